package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	lst, err := os.Stat(filepath.Join(dir, lockFileName))
	if err != nil || lst.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v (%v), want 0600", lst.Mode().Perm(), err)
	}
	// flock belongs to the open file description: a second open in this
	// process conflicts like another process would.
	_, err = lockDataDir(dir)
	if !errors.Is(err, errDataDirBusy) {
		t.Fatalf("second lock: %v, want errDataDirBusy", err)
	}
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()

	// A symbolic link in place of the lock file is refused, not followed.
	link := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(link, 0o700)
	os.Symlink(filepath.Join(t.TempDir(), "target"), filepath.Join(link, lockFileName))
	if l3, err := lockDataDir(link); err == nil {
		l3.Close()
		t.Error("a symbolic link as lock file was followed")
	}
}
