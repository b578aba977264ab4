package actors

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// bpfFDs lists this process's open BPF objects and perf events (uprobes).
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

// TestNativeShutdownDetaches runs a native trace in the runtime's own
// process and shuts the runtime down: the trace ends with reason shutdown,
// its summary is delivered, and no BPF object or uprobe stays open in the
// process.
func TestNativeShutdownDetaches(t *testing.T) {
	rt, _, _ := newTestRuntime(t, nil)
	ch, unsubscribe := rt.Subscribe(4)
	defer unsubscribe()
	before := bpfFDs(t)
	ctx := context.Background()
	tmpl := messages.Template{ID: 1, Info: messages.TemplateInfo{
		Process: fakeTracer, Functions: []string{"main.main"}, TraceType: messages.BPF,
	}}
	s, err := rt.Start(ctx, StartRequest{Template: tmpl, Lasting: time.Minute, Mode: messages.ModeSummary, Engine: messages.EngineNative})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		info, _, _ := rt.Running(ctx, s.FilePath)
		if info.Engine != messages.EngineNative {
			t.Fatalf("RunningInfo engine %q, want native", info.Engine)
		}
		return info.State == messages.StateRunning
	})
	if during := bpfFDs(t); len(during) <= len(before) {
		t.Fatalf("no BPF file descriptors while the native trace runs: %v", during)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-ch:
		if f.FilePath != s.FilePath || f.Reason != messages.ReasonShutdown || f.Code != 0 {
			t.Errorf("finished %+v, want reason shutdown, code 0", f)
		}
	default:
		t.Error("no finished notification before Shutdown returned")
	}
	if after := bpfFDs(t); len(after) > len(before) {
		t.Errorf("BPF file descriptors left after the shutdown: %v (before: %v)", after, before)
	}
}
