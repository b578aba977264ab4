package tests

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCreatedFilesArePrivate runs a real endpoint under umask 0 (so only
// the modes the endpoint asks for count), stores a template, keeps a trace
// running with its output spooled, and checks everything the endpoint
// created: directories 0700, files 0600 (the SQLite store and its -wal/-shm,
// the data directory, spools, tracer scripts).
func TestCreatedFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	dataDir := filepath.Join(root, "data") // created by the endpoint
	dbDir := filepath.Join(root, "db")     // created by the endpoint
	e := startEndpoint(t, endpointOptions{DatabaseURL: "sqlite://" + filepath.Join(dbDir, "lambda.db"), DataDir: dataDir})
	id := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"environment":["BPFTRACE_FAKE_MODE"],"value":["silent 30"],"traceType":"BPF"}`)
	s := e.start("BPF", id, 30)
	eventually(t, 20*time.Second, "the trace to run", func() bool {
		st, body, _ := e.do("GET", "/trace/running?path="+s.FilePath, "", nil)
		return st == http.StatusOK && strings.Contains(string(body), `"state":"running"`)
	})

	checked := map[string]bool{}
	walk := func(dir string) {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), want)
			}
			checked[path] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(dataDir)
	walk(dbDir)
	walk(e.TraceDir) // made by the harness with 0700; the scripts in it by the endpoint
	for _, must := range []string{dataDir, filepath.Join(dataDir, "spool"), filepath.Join(dbDir, "lambda.db"),
		filepath.Join(dbDir, "lambda.db-wal"), filepath.Join(dbDir, "lambda.db-shm"), s.FilePath} {
		if !checked[must] {
			t.Errorf("%s was not created: the test checks nothing for it (checked %d paths)", must, len(checked))
		}
	}
	spools, _ := os.ReadDir(filepath.Join(dataDir, "spool"))
	if len(spools) == 0 {
		t.Errorf("no spool of the running trace under %s", filepath.Join(dataDir, "spool"))
	}
	t.Logf("checked %d paths", len(checked))
}
