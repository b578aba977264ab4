package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStage(t *testing.T) {
	dir := t.TempDir()
	st, err := createStage(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"line one\n", "line two\n", "partial"} {
		if err := st.write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		committed int64
		want      string
		wantErr   bool
	}{
		{0, "line one\nline two\npartial", false},
		{9, "line two\npartial", false},
		{25, "", false},
		{26, "", true}, // the spool holds more than was ever staged
		{-1, "", true},
	}
	for _, tt := range tests {
		got, err := readStaged(dir, tt.committed)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("readStaged(%d) = %q, %v; want %q, error %v", tt.committed, got, err, tt.want, tt.wantErr)
		}
	}

	// Compaction keeps only what is not in a chunk, at its stream offset.
	big := strings.Repeat("x", stageCompactAt)
	if err := st.write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	committed := int64(25 + len(big) - 3)
	st2, err := st.compact(committed, []byte("xxx"))
	if err != nil {
		t.Fatal(err)
	}
	if st2 == st {
		t.Fatal("a file over the threshold was not compacted")
	}
	if err := st2.write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if got, err := readStaged(dir, committed); err != nil || string(got) != "xxxmore" {
		t.Errorf("after compaction readStaged = %q, %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, stageName)); fi.Size() != stageHeader+7 {
		t.Errorf("compacted file is %d bytes", fi.Size())
	}
	// A small file is left alone.
	if st3, _ := st2.compact(committed+3, []byte("more")); st3 != st2 {
		t.Error("a small file was compacted")
	}

	if err := st2.remove(); err != nil {
		t.Fatal(err)
	}
	if got, err := readStaged(dir, 0); got != nil || err != nil {
		t.Errorf("after remove readStaged = %q, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, stageName), []byte("garbage"), 0o600)
	if _, err := readStaged(dir, 0); err == nil {
		t.Error("a file without header was accepted")
	}
}
