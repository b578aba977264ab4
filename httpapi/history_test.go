package httpapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// TestHistoryEngine: GET /traces/history shows the engine of each run the
// way RunningInfo does: bpftrace or native for BPF (bpftrace when the row
// recorded none), absent for STAP.
func TestHistoryEngine(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stapInfo := f.bpf.Info
	stapInfo.TraceType = messages.STAP
	for i, r := range []struct {
		path   string
		typ    messages.TraceType
		engine messages.Engine
	}{
		{"/tmp/native.trace", messages.BPF, messages.EngineNative},
		{"/tmp/bpftrace.trace", messages.BPF, messages.EngineBPFtrace},
		{"/tmp/unrecorded.trace", messages.BPF, ""},
		{"/tmp/stap.trace", messages.STAP, ""},
	} {
		info := f.bpf.Info
		if r.typ == messages.STAP {
			info = stapInfo
		}
		if err := f.store.CreateRun(ctx, persistence.Run{Path: r.path, TemplateID: f.bpf.ID, Type: r.typ, Info: info, Mode: messages.ModeEvents,
			Engine: r.engine, Thread: int64(i + 1), StartedAt: fixedNow.Add(time.Duration(i) * time.Second), Lasting: 60, State: persistence.RunFinished}); err != nil {
			t.Fatal(err)
		}
	}
	w := f.do("GET", "/traces/history", "", nil)
	var page struct{ Runs []map[string]any }
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	got := map[string]any{}
	for _, r := range page.Runs {
		e, ok := r["engine"]
		if !ok {
			e = "(absent)"
		}
		got[r["filePath"].(string)] = e
	}
	want := map[string]any{"/tmp/native.trace": "native", "/tmp/bpftrace.trace": "bpftrace", "/tmp/unrecorded.trace": "bpftrace", "/tmp/stap.trace": "(absent)"}
	if len(got) != len(want) {
		t.Fatalf("history engines %v, want %v", got, want)
	}
	for p, e := range want {
		if got[p] != e {
			t.Errorf("%s: engine %v, want %v", p, got[p], e)
		}
	}
}
