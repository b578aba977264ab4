package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// TestHistoryByPath: ?path= answers the run of that trace alone (none for
// an unknown path or one whose state is filtered out), with the stderr tail
// of a run this process saw finish.
func TestHistoryByPath(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ch := make(chan messages.TraceFinished, 4)
	f.srv.opts.Finished = NewFinishedLog(ch, 0)
	code := 3
	for i, p := range []string{"/tmp/failed.trace", "/tmp/other.trace"} {
		if err := f.store.CreateRun(ctx, persistence.Run{Path: p, TemplateID: f.bpf.ID, Type: messages.BPF, Info: f.bpf.Info, Mode: messages.ModeEvents,
			Thread: int64(i + 1), StartedAt: fixedNow.Add(time.Duration(i) * time.Second), Lasting: 60, State: persistence.RunFinished,
			Reason: messages.ReasonFailed, ExitCode: &code}); err != nil {
			t.Fatal(err)
		}
	}
	ch <- messages.TraceFinished{FilePath: "/tmp/failed.trace", Reason: messages.ReasonFailed, Code: 3, Stderr: "faketracer: exiting with code 3\n"}
	tests := []struct {
		name, query string
		want        []string // filePaths
		stderr      string   // stderrTail of the first run, "-" for none
	}{
		{"one path", "?path=/tmp/failed.trace", []string{"/tmp/failed.trace"}, "faketracer: exiting with code 3\n"},
		{"another path, stderr not seen", "?path=/tmp/other.trace", []string{"/tmp/other.trace"}, "-"},
		{"unknown path", "?path=/tmp/nope.trace", nil, ""},
		// A caller's hostile paths reach the store as parameters: none or
		// nothing, never an error or another run.
		{"path with a NUL", "?path=%2Ftmp%2Ffailed.trace%00", nil, ""},
		{"path quoting SQL", "?path=%27%20OR%201%3D1%20--", nil, ""},
		{"path of invalid UTF-8", "?path=%FF%FE", nil, ""},
		{"path of 64 KiB", "?path=" + strings.Repeat("a", 64<<10), nil, ""},
		{"state kept", "?path=/tmp/failed.trace&state=finished", []string{"/tmp/failed.trace"}, "faketracer: exiting with code 3\n"},
		{"state filtered out", "?path=/tmp/failed.trace&state=running", nil, ""},
		{"no path: all, newest first", "", []string{"/tmp/other.trace", "/tmp/failed.trace"}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do("GET", "/traces/history"+tt.query, "", nil)
			var page struct {
				Runs []struct {
					FilePath   string  `json:"filePath"`
					StderrTail *string `json:"stderrTail"`
				} `json:"runs"`
				Next *string `json:"next"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 || page.Runs == nil || page.Next != nil {
				t.Fatalf("%d %s: %v", w.Code, w.Body, err)
			}
			var got []string
			for _, r := range page.Runs {
				got = append(got, r.FilePath)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("runs %v, want %v", got, tt.want)
			}
			if len(page.Runs) == 0 {
				return
			}
			st := "-"
			if s := page.Runs[0].StderrTail; s != nil {
				st = *s
			}
			if st != tt.stderr {
				t.Errorf("stderrTail %q, want %q", st, tt.stderr)
			}
		})
	}
}

// TestFinishedLog: the log keeps the last runs' stderr tails, bounded in
// runs and bytes, and sees what was published before a lookup.
func TestFinishedLog(t *testing.T) {
	ch := make(chan messages.TraceFinished, 8)
	l := NewFinishedLog(ch, 2)
	long := strings.Repeat("x", 3000) + "\n" + strings.Repeat("y", StderrTailBytes-10) + "\n"
	for i, s := range []string{"a\n", "b\n", long} {
		ch <- messages.TraceFinished{FilePath: fmt.Sprintf("/tmp/%d.trace", i), Stderr: s}
	}
	if _, ok := l.StderrTail("/tmp/0.trace"); ok {
		t.Error("the oldest of three runs is kept in a log of two")
	}
	if s, ok := l.StderrTail("/tmp/1.trace"); !ok || s != "b\n" {
		t.Errorf("run 1: %q %v", s, ok)
	}
	s, ok := l.StderrTail("/tmp/2.trace")
	if !ok || len(s) > StderrTailBytes || !strings.HasPrefix(s, "yyy") || !strings.HasSuffix(s, "y\n") {
		t.Errorf("run 2: %d bytes, starting %.10q, %v; want the last line whole, at most %d bytes", len(s), s, ok, StderrTailBytes)
	}
	var nilLog *FinishedLog
	if _, ok := nilLog.StderrTail("/tmp/1.trace"); ok {
		t.Error("a nil log found a run")
	}
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("é", 3000), strings.Repeat("é", StderrTailBytes/2)},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := tail(c.in, StderrTailBytes); got != c.want {
			t.Errorf("tail(%.20q) = %.20q (%d bytes), want %.20q", c.in, got, len(got), c.want)
		}
	}
}

// TestKillSaysWhetherFound: the kill answer is the seed's "Killed" either
// way, and its Lambda-Trace-Found header tells the two apart.
func TestKillSaysWhetherFound(t *testing.T) {
	f := newFixture(t)
	f.traces.running["/tmp/r.trace"] = messages.RunningInfo{FilePath: "/tmp/r.trace", State: "running"}
	for _, c := range []struct{ path, want string }{{"/tmp/r.trace", "true"}, {"/tmp/nope.trace", "false"}} {
		w := f.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, c.path), nil)
		if w.Code != 200 || w.Body.String() != "Killed" || w.Header().Get(TraceFoundHeader) != c.want {
			t.Errorf("kill %s: %d %q %s: %q; want 200 Killed, %s", c.path, w.Code, w.Body, TraceFoundHeader, w.Header().Get(TraceFoundHeader), c.want)
		}
	}
}

// TestHistoryLastPageHasNoNext: next is given only when older runs exist,
// so following it never ends on an empty page.
func TestHistoryLastPageHasNoNext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i, p := range []string{"/tmp/a.trace", "/tmp/b.trace"} {
		if err := f.store.CreateRun(ctx, persistence.Run{Path: p, TemplateID: f.bpf.ID, Type: messages.BPF, Info: f.bpf.Info,
			Mode: messages.ModeEvents, Thread: int64(i + 1), StartedAt: fixedNow.Add(time.Duration(i) * time.Second), Lasting: 60,
			State: persistence.RunFinished}); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Runs []struct {
			FilePath string `json:"filePath"`
		} `json:"runs"`
		Next string `json:"next"`
	}
	get := func(query string) page {
		t.Helper()
		w := f.do("GET", "/traces/history"+query, "", nil)
		var p page
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", query, w.Code, w.Body)
		}
		return p
	}
	tests := []struct {
		name  string
		query func(prev page) string
		want  string // filePaths
		next  bool
	}{
		{"first of two", func(page) string { return "?limit=1" }, "/tmp/b.trace", true},
		{"last of two", func(prev page) string { return "?limit=1&before=" + prev.Next }, "/tmp/a.trace", false},
		{"both in one full page", func(page) string { return "?limit=2" }, "/tmp/b.trace /tmp/a.trace", false},
	}
	var prev page
	for _, tt := range tests {
		p := get(tt.query(prev))
		var got []string
		for _, r := range p.Runs {
			got = append(got, r.FilePath)
		}
		if strings.Join(got, " ") != tt.want || (p.Next != "") != tt.next {
			t.Errorf("%s: runs %v, next %q; want %s, next given %v", tt.name, got, p.Next, tt.want, tt.next)
		}
		prev = p
	}
}
