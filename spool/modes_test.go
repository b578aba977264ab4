package spool

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSpoolFilesArePrivate creates a spool under a permissive umask, makes
// it rotate segments, acknowledge, rewrite its meta and seal, and checks
// that every directory it made is DirMode and every file FileMode.
func TestSpoolFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := filepath.Join(t.TempDir(), "spool")
	s, err := Create(filepath.Join(root, "trace-1"), []byte(`{"trace":"t"}`), Options{SegmentBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendRange(t, s, 0, 10)
	for no := int64(0); no < 4; no++ {
		if err := s.Ack(no); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetMeta([]byte(`{"trace":"t","more":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(FileMode)
		if d.IsDir() {
			want = DirMode
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("only %d files in the spool: the test checks too little", files)
	}
}
