package actors

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// TestRunHistoryEngine: the history row of a run records the engine that
// ran it, the one RunningInfo shows.
func TestRunHistoryEngine(t *testing.T) {
	store, err := persistence.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rt, _, _ := newTestRuntime(t, func(o *Options) { o.Runs = store; o.CgroupParent = "-" })
	nativeTmpl := messages.Template{ID: 1, Info: messages.TemplateInfo{
		Process: fakeTracer, Functions: []string{"main.main"}, TraceType: messages.BPF,
	}}
	for _, c := range []struct {
		name string
		req  StartRequest
		want messages.Engine
	}{
		{"default", StartRequest{Template: fakeTemplate("lines 3 10ms"), Lasting: time.Minute}, messages.EngineBPFtrace},
		{"bpftrace", StartRequest{Template: fakeTemplate("lines 3 10ms"), Lasting: time.Minute, Engine: messages.EngineBPFtrace}, messages.EngineBPFtrace},
		{"native", StartRequest{Template: nativeTmpl, Lasting: time.Second, Mode: messages.ModeSummary, Engine: messages.EngineNative}, messages.EngineNative},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := rt.Start(ctx, c.req)
			if err != nil {
				t.Fatal(err)
			}
			var run persistence.Run
			waitFor(t, func() bool {
				run, err = store.GetRun(ctx, s.FilePath)
				return err == nil && run.State == persistence.RunFinished
			})
			if run.Engine != c.want {
				t.Errorf("history engine %q, want %q", run.Engine, c.want)
			}
		})
	}
}
