package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// emptySHA256 is the digest of no bytes: what a trace without output
// reports.
var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// TestEndings checks that the finished message tells the truth about how a
// trace ended, through the real endpoint: the reason, and chunks, bytes and
// sha256 also for a trace without output (platformtest checks each against
// what arrived), and the history row.
func TestEndings(t *testing.T) {
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	tests := []struct {
		name, mode string
		code       int
		reason     string
		bytes      int64
	}{
		{"tracer fails on its own", "exit 1", 1, "failed", 0},
		{"tracer completes without output", "exit 0", 0, "completed", 0},
		{"tracer completes with output", "lines 3 1ms", 0, "completed", 3 * int64(len(`{"seq":0}`+"\n"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.start("BPF", e.putTemplate(fakeTemplate(tt.mode)), 60)
			rec := waitFinished(t, p, s.FilePath, 30*time.Second)
			f := rec.Finished
			if f.Code != tt.code || f.Reason != tt.reason || f.Bytes != tt.bytes || rec.Bytes != tt.bytes {
				t.Errorf("finished %+v, platform holds %d bytes", f, rec.Bytes)
			}
			if tt.bytes == 0 && (f.Chunks != 0 || f.SHA256 != emptySHA256) {
				t.Errorf("an empty trace finished %+v; want chunks 0 and the sha256 of nothing", f)
			}
			h := e.waitHistory(s.FilePath, "finished", 30*time.Second)
			if h.Reason != tt.reason || h.Code == nil || *h.Code != tt.code {
				t.Errorf("history %+v", h)
			}
		})
	}
}

// TestFullDataDir: a start accepted (200) on a data-dir with no space left
// cannot create its spool. The platform still gets start and finished
// (failed-to-start, with the reason in stderr), and the history records the
// run. The data-dir is a small tmpfs the test mounts and fills.
func TestFullDataDir(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v: %s", err, out)
	}
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), DataDir: dir})
	t.Cleanup(func() {
		e.Stop()
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting the tmpfs: %v", err)
		}
	})
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for {
		if _, err := fill.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	fill.Close()

	s := e.start("BPF", e.putTemplate(fakeTemplate("lines 3 1ms")), 60)
	rec := waitFinished(t, p, s.FilePath, 30*time.Second)
	f := rec.Finished
	if !rec.Started || f.Reason != "failed-to-start" || f.Code == 0 || !strings.Contains(f.Stderr, "spool") ||
		f.Chunks != 0 || f.Bytes != 0 || f.SHA256 != emptySHA256 {
		t.Errorf("finished %+v (started %v)", f, rec.Started)
	}
	if h := e.waitHistory(s.FilePath, "finished", 30*time.Second); h.Reason != "failed-to-start" {
		t.Errorf("history %+v", h)
	}
}

// TestThreadIDsAcrossRestart: after a restart on the same database, the
// next thread id is greater than every earlier one.
func TestThreadIDsAcrossRestart(t *testing.T) {
	p := newPlatform(t)
	db := stores(t)["sqlite"]
	e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL()})
	id := e.putTemplate(fakeTemplate("exit 0"))
	var last int64
	for i := 0; i < 3; i++ {
		s := e.start("BPF", id, 60)
		waitFinished(t, p, s.FilePath, 30*time.Second)
		e.waitHistory(s.FilePath, "finished", 30*time.Second)
		last = max(last, s.Thread)
	}
	if code := e.Stop(); code != 0 {
		t.Fatalf("endpoint stopped with code %d", code)
	}
	e2 := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL()})
	s := e2.start("BPF", id, 60)
	if s.Thread <= last {
		t.Errorf("thread %d after a restart; earlier threads went up to %d", s.Thread, last)
	}
	waitFinished(t, p, s.FilePath, 30*time.Second)
}
