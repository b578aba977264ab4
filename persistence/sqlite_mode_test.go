package persistence

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// TestSQLiteFilesArePrivate opens a store in a directory it must create,
// writes to it, and checks that the directory is 0700 and every file
// SQLite made (the database, -wal, -shm, the migration lock) is 0600, even
// under a permissive umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	st, err := Open(ctx, "sqlite://"+filepath.Join(dir, "lambda.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateTemplate(ctx, messages.TemplateInfo{Process: "/bin/bash", Functions: []string{"x"}, TraceType: messages.BPF}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("database directory mode %o, want 700", perm)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimPrefix(e.Name(), "lambda.db")] = true
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", e.Name(), perm)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if !seen[suffix] {
			t.Errorf("lambda.db%s was not created (files: %v); the test checks nothing for it", suffix, seen)
		}
	}
}

// TestSQLiteKeepsModeOfExistingFile checks that an operator's choice of mode
// for an existing database file is left alone.
func TestSQLiteKeepsModeOfExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lambda.db")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o640 {
		t.Errorf("mode %o, want the operator's 640", perm)
	}
}
