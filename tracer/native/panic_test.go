package native

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bpfFDs lists the open file descriptors of this process that are BPF
// objects or perf events (uprobes): what a trace holds while it runs.
func bpfFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (strings.Contains(l, "bpf") || strings.Contains(l, "perf_event")) {
			out = append(out, e.Name()+" -> "+l)
		}
	}
	return out
}

// TestPanicEndsTrace: a panic in a trace's goroutine does not reach the
// process; the trace ends with the panic in Wait's error, its output
// reaches EOF, and every probe, map and program is released.
func TestPanicEndsTrace(t *testing.T) {
	needRoot(t)
	c, _ := targets(t)
	before := bpfFDs(t)
	gate := make(chan struct{})
	runHook = func() { <-gate; panic("injected") }
	defer func() { runHook = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := Start(ctx, Spec{Process: c, Functions: []string{"f"}})
	if err != nil {
		t.Fatal(err)
	}
	if during := bpfFDs(t); len(during) <= len(before) {
		t.Errorf("no BPF file descriptors seen while the trace runs: %v", during)
	}
	close(gate)
	if _, err := io.ReadAll(tr.Output()); err != nil {
		t.Errorf("reading output: %v", err)
	}
	_, err = tr.Wait()
	if err == nil || !strings.Contains(err.Error(), "native engine panicked: injected") {
		t.Errorf("Wait: %v, want the panic", err)
	}
	if after := bpfFDs(t); len(after) > len(before) {
		t.Errorf("BPF file descriptors left open after the panic: %v (before: %v)", after, before)
	}
}
