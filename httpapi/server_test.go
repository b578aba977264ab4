package httpapi

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fakeVerifier accepts "ok", answers busy to "busy" and refuses the rest.
type fakeVerifier struct{}

func (fakeVerifier) Verify(ctx context.Context, header string) error {
	switch header {
	case "ok":
		return nil
	case "busy":
		return fmt.Errorf("%w: waiting for a verification slot: %w", auth.ErrBusy, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: hash mismatch", auth.ErrUnauthorized)
}

// fakeTraces is the runtime seam: it answers from its fields and records
// the start requests it got.
type fakeTraces struct {
	mu         sync.Mutex
	startErr   error
	starts     []actors.StartRequest
	running    map[string]messages.RunningInfo
	queryErr   error // of Running, All and Kill
	killed     []string
	nextThread int64
}

func (f *fakeTraces) Start(ctx context.Context, req actors.StartRequest) (messages.StartTraceReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return messages.StartTraceReply{}, f.startErr
	}
	f.starts = append(f.starts, req)
	f.nextThread++
	return messages.StartTraceReply{Thread: f.nextThread, FilePath: fmt.Sprintf("/tmp/%d.trace", f.nextThread)}, nil
}

func (f *fakeTraces) Running(ctx context.Context, path string) (messages.RunningInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queryErr != nil {
		return messages.RunningInfo{}, false, f.queryErr
	}
	info, ok := f.running[path]
	return info, ok, nil
}

func (f *fakeTraces) All(ctx context.Context) ([]messages.RunningInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	var all []messages.RunningInfo
	for _, info := range f.running {
		all = append(all, info)
	}
	return all, nil
}

func (f *fakeTraces) Kill(ctx context.Context, path string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queryErr != nil {
		return false, f.queryErr
	}
	f.killed = append(f.killed, path)
	_, ok := f.running[path]
	return ok, nil
}

// downStore is the real SQLite store with a switch that makes it answer
// like a database that went away.
type downStore struct {
	*persistence.Store
	down bool
}

var errDown = fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused", persistence.ErrUnavailable)

func (d *downStore) CreateTemplate(ctx context.Context, info messages.TemplateInfo) (messages.Template, error) {
	if d.down {
		return messages.Template{}, errDown
	}
	return d.Store.CreateTemplate(ctx, info)
}

func (d *downStore) ListTemplates(ctx context.Context) ([]messages.Template, error) {
	if d.down {
		return nil, errDown
	}
	return d.Store.ListTemplates(ctx)
}

func (d *downStore) GetTemplate(ctx context.Context, id int64) (messages.Template, error) {
	if d.down {
		return messages.Template{}, errDown
	}
	return d.Store.GetTemplate(ctx, id)
}

func (d *downStore) DeleteTemplate(ctx context.Context, t messages.TraceType, id int64) error {
	if d.down {
		return errDown
	}
	return d.Store.DeleteTemplate(ctx, t, id)
}

func (d *downStore) GetRun(ctx context.Context, path string) (persistence.Run, error) {
	if d.down {
		return persistence.Run{}, errDown
	}
	return d.Store.GetRun(ctx, path)
}

func (d *downStore) ListRuns(ctx context.Context, q persistence.RunQuery) ([]persistence.Run, error) {
	if d.down {
		return nil, errDown
	}
	return d.Store.ListRuns(ctx, q)
}

// fixture is one Server on a fresh in-memory store, with fakes.
type fixture struct {
	srv    *Server
	store  *downStore
	traces *fakeTraces
	logs   *bytes.Buffer
	bpf    messages.Template // a stored BPF template
}

var fixedNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := persistence.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: &downStore{Store: st}, traces: &fakeTraces{running: map[string]messages.RunningInfo{}}, logs: &bytes.Buffer{}}
	f.bpf, err = st.CreateTemplate(ctx, messages.TemplateInfo{Process: "/bin/bash", Functions: []string{"xmalloc"},
		Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.BPF})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = New(Options{
		Templates: f.store, Runs: f.store, Traces: f.traces, Verifier: fakeVerifier{},
		MaxLasting: time.Hour, MaxBodyBytes: 4096, Now: func() time.Time { return fixedNow },
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// do sends one request through the handler; a body is sent as JSON unless
// hdr sets Content-Type ("" deletes it); Authorization is "ok" unless set.
func (f *fixture) do(method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "ok")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	return w
}

const bashBody = `{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF"}`

// TestRoutes checks every route's success answer against the fakes.
func TestRoutes(t *testing.T) {
	f := newFixture(t)
	f.traces.running["/tmp/r.trace"] = messages.RunningInfo{TemplateInfo: f.bpf.Info, TraceNo: f.bpf.ID, Thread: 3, FilePath: "/tmp/r.trace", Lasting: 60, State: "running"}
	tests := []struct {
		name, method, path, body string
		status                   int
		contentType, bodyHas     string
	}{
		{"heartbeat", "GET", "/heartbeat", "", 200, "application/json", `{"status":"alive","time":"2026-12-01T12:00:00Z"}`},
		{"list templates", "GET", "/traces", "", 200, "application/json", `"traceNo":1,"info":{"process":"/bin/bash","functions":["xmalloc"]`},
		{"put template", "PUT", "/trace", `{"process":"/bin/bash","funtions":["xfree"],"traceType":["stap"]}`, 201, "application/json", `"traceNo":2,"info":{"process":"/bin/bash","functions":["xfree"],"environment":[],"value":[],"options":[],"traceType":"STAP"}`},
		{"put template, charset utf-8", "PUT", "/trace", bashBody, 201, "application/json", `"traceNo":3`},
		{"start", "POST", "/trace/start", `{"traceT":"bpf","traceId":1,"lasting":60}`, 200, "application/json", `{"thread":1,"filePath":"/tmp/1.trace"}`},
		{"start calls mode", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":3600,"mode":"calls"}`, 200, "application/json", `{"thread":2,"filePath":"/tmp/2.trace"}`},
		{"running", "GET", "/trace/running?path=/tmp/r.trace", "", 200, "application/json", `"traceNo":1,"thread":3,"filePath":"/tmp/r.trace"`},
		{"all running", "GET", "/traces/running/all", "", 200, "application/json", `[{"process":"/bin/bash"`},
		{"kill running", "POST", "/trace/kill", `{"killPath":"/tmp/r.trace"}`, 200, "text/plain", "Killed"},
		{"kill not running", "POST", "/trace/kill", `{"killPath":"/tmp/none.trace"}`, 200, "text/plain", "Killed"},
		{"history", "GET", "/traces/history?limit=5&state=finished,running", "", 200, "application/json", `{"runs":[]}`},
		{"remove", "POST", "/trace/remove", `{"removeType":"STAP","removeId":2}`, 200, "text/plain", "deleted"},
	}
	for _, tt := range tests {
		var hdr map[string]string
		if tt.name == "put template, charset utf-8" {
			hdr = map[string]string{"Content-Type": "application/json; charset=UTF-8"}
		}
		w := f.do(tt.method, tt.path, tt.body, hdr)
		if w.Code != tt.status || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.contentType) || !strings.Contains(w.Body.String(), tt.bodyHas) {
			t.Errorf("%s: %d %q %s, want %d %s holding %s", tt.name, w.Code, w.Header().Get("Content-Type"), w.Body, tt.status, tt.contentType, tt.bodyHas)
		}
	}
	if len(f.traces.starts) != 2 || f.traces.starts[0].Lasting != time.Minute || f.traces.starts[0].Mode != messages.ModeEvents ||
		f.traces.starts[1].Mode != messages.ModeCalls || f.traces.starts[0].Template.ID != f.bpf.ID {
		t.Errorf("runtime got starts %+v", f.traces.starts)
	}
	if len(f.traces.killed) != 2 {
		t.Errorf("runtime got kills %v", f.traces.killed)
	}
}

// TestErrorBodies drives every error a handler can return and compares
// status, body and the headers a caller acts on with
// testdata/errors.golden (go test -run TestErrorBodies -update rewrites it).
func TestErrorBodies(t *testing.T) {
	big := `{"process":"/bin/bash","functions":["` + strings.Repeat("a", 5000) + `"],"traceType":"BPF"}`
	type setup func(f *fixture)
	startErr := func(err error) setup { return func(f *fixture) { f.traces.startErr = err } }
	queryErr := func(err error) setup { return func(f *fixture) { f.traces.queryErr = err } }
	storeDown := func(f *fixture) { f.store.down = true }
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		setup                    setup
	}{
		{name: "auth missing", method: "GET", path: "/heartbeat", hdr: map[string]string{"Authorization": ""}},
		{name: "auth refused", method: "GET", path: "/traces", hdr: map[string]string{"Authorization": "Bearer x"}},
		{name: "auth busy", method: "GET", path: "/traces", hdr: map[string]string{"Authorization": "busy"}},
		{name: "unknown route", method: "GET", path: "/nope"},
		{name: "wrong method", method: "DELETE", path: "/trace"},
		{name: "OPTIONS is not served", method: "OPTIONS", path: "/trace/start"},
		{name: "no content type", method: "PUT", path: "/trace", body: bashBody, hdr: map[string]string{"Content-Type": ""}},
		{name: "text content type", method: "PUT", path: "/trace", body: bashBody, hdr: map[string]string{"Content-Type": "text/plain"}},
		{name: "latin-1 charset", method: "PUT", path: "/trace", body: bashBody, hdr: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}},
		{name: "body too large", method: "PUT", path: "/trace", body: big},
		{name: "invalid UTF-8", method: "PUT", path: "/trace", body: "{\"process\":\"/bin/\xff\"}"},
		{name: "malformed JSON", method: "PUT", path: "/trace", body: `{"process":`},
		{name: "empty body", method: "PUT", path: "/trace", body: ` `},
		{name: "not an object", method: "PUT", path: "/trace", body: `[]`},
		{name: "trailing data", method: "PUT", path: "/trace", body: bashBody + `{}`},
		{name: "unknown key", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"],"traceType":"BPF","shell":"id"}`},
		{name: "case-variant key", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","PROCESS":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`},
		{name: "duplicate key", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","process":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`},
		{name: "both spellings", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"],"funtions":["a"],"traceType":"BPF"}`},
		{name: "process missing", method: "PUT", path: "/trace", body: `{"functions":["a"],"traceType":"BPF"}`},
		{name: "process a number", method: "PUT", path: "/trace", body: `{"process":7,"functions":["a"],"traceType":"BPF"}`},
		{name: "functions missing", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","traceType":"BPF"}`},
		{name: "functions a string", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":"a","traceType":"BPF"}`},
		{name: "traceType missing", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"]}`},
		{name: "traceType unknown", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"],"traceType":"DTRACE"}`},
		{name: "traceType empty array", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"],"traceType":[]}`},
		{name: "invalid process", method: "PUT", path: "/trace", body: `{"process":"bin/bash","functions":["a"],"traceType":"BPF"}`},
		{name: "invalid option", method: "PUT", path: "/trace", body: `{"process":"/bin/bash","functions":["a"],"options":["-c","id"],"traceType":"BPF"}`},
		{name: "store down on put", method: "PUT", path: "/trace", body: bashBody, setup: storeDown},
		{name: "store down on list", method: "GET", path: "/traces", setup: storeDown},
		{name: "remove type missing", method: "POST", path: "/trace/remove", body: `{"removeId":1}`},
		{name: "remove id missing", method: "POST", path: "/trace/remove", body: `{"removeType":"BPF"}`},
		{name: "remove id a string", method: "POST", path: "/trace/remove", body: `{"removeType":"BPF","removeId":"1"}`},
		{name: "remove unknown id", method: "POST", path: "/trace/remove", body: `{"removeType":"BPF","removeId":999}`},
		{name: "remove other type", method: "POST", path: "/trace/remove", body: `{"removeType":"STAP","removeId":1}`},
		{name: "remove store down", method: "POST", path: "/trace/remove", body: `{"removeType":"BPF","removeId":1}`, setup: storeDown},
		{name: "start traceT missing", method: "POST", path: "/trace/start", body: `{"traceId":1,"lasting":10}`},
		{name: "start traceId missing", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","lasting":10}`},
		{name: "start lasting missing", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1}`},
		{name: "start lasting a string", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":"10"}`},
		{name: "start lasting a fraction", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":1.5}`},
		{name: "start lasting 0", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":0}`},
		{name: "start lasting over the maximum", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":3601}`},
		{name: "start unknown id", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":999,"lasting":10}`},
		{name: "start other type", method: "POST", path: "/trace/start", body: `{"traceT":"STAP","traceId":1,"lasting":10}`},
		{name: "start store down", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`, setup: storeDown},
		{name: "start invalid", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10,"mode":"loud"}`,
			setup: startErr(fmt.Errorf("%w: mode: %q is not one of events, calls, summary", actors.ErrInvalid, "loud"))},
		{name: "start engine a number", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10,"engine":1}`},
		{name: "start engine empty", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10,"engine":""}`},
		{name: "start engine unknown", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10,"engine":"dtrace"}`,
			setup: startErr(fmt.Errorf("%w: engine: %q is not one of bpftrace, native", actors.ErrInvalid, "dtrace"))},
		{name: "start binary missing", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`,
			setup: startErr(fmt.Errorf("%w: process %q: stat /bin/bash: no such file or directory", actors.ErrBinaryMissing, "/bin/bash"))},
		{name: "start tracer missing", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`,
			setup: startErr(fmt.Errorf("%w: lambda.bpf-path = %q: no such file or directory", actors.ErrTracerMissing, "/usr/bin/bpftrace"))},
		{name: "start too many", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`,
			setup: startErr(fmt.Errorf("%w: 32 of 32 (lambda.max-traces)", actors.ErrTooManyTraces))},
		{name: "start runtime timeout", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`,
			setup: startErr(fmt.Errorf("%w (5s)", actors.ErrTimeout))},
		{name: "start shutting down", method: "POST", path: "/trace/start", body: `{"traceT":"BPF","traceId":1,"lasting":10}`, setup: startErr(actors.ErrShuttingDown)},
		{name: "running without path", method: "GET", path: "/trace/running"},
		{name: "running unknown path", method: "GET", path: "/trace/running?path=/tmp/nope.trace"},
		{name: "running runtime timeout", method: "GET", path: "/trace/running?path=/tmp/x.trace", setup: queryErr(fmt.Errorf("%w (5s)", actors.ErrTimeout))},
		{name: "all runtime timeout", method: "GET", path: "/traces/running/all", setup: queryErr(fmt.Errorf("%w (5s)", actors.ErrTimeout))},
		{name: "kill path missing", method: "POST", path: "/trace/kill", body: `{}`},
		{name: "kill path a number", method: "POST", path: "/trace/kill", body: `{"killPath":1}`},
		{name: "kill runtime shutting down", method: "POST", path: "/trace/kill", body: `{"killPath":"/tmp/x.trace"}`, setup: queryErr(actors.ErrShuttingDown)},
		{name: "history limit", method: "GET", path: "/traces/history?limit=0"},
		{name: "history cursor", method: "GET", path: "/traces/history?before=zzz"},
		{name: "history state", method: "GET", path: "/traces/history?state=sleeping"},
		{name: "history store down", method: "GET", path: "/traces/history", setup: storeDown},
		{name: "history empty path", method: "GET", path: "/traces/history?path="},
		{name: "history path and cursor", method: "GET", path: "/traces/history?path=/tmp/x.trace&before=abc"},
		{name: "history path, store down", method: "GET", path: "/traces/history?path=/tmp/x.trace", setup: storeDown},
	}
	var out strings.Builder
	for _, tt := range tests {
		f := newFixture(t)
		if tt.setup != nil {
			tt.setup(f)
		}
		w := f.do(tt.method, tt.path, tt.body, tt.hdr)
		if w.Code < 400 {
			t.Errorf("%s: status %d, want an error", tt.name, w.Code)
		}
		body := strings.TrimSuffix(w.Body.String(), "\n")
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", tt.name, ct)
		}
		for _, bad := range []string{"Go struct", "int64", "[]string", "*string", "unauthorized: unauthorized", "json:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: body %s holds %q", tt.name, body, bad)
			}
		}
		fmt.Fprintf(&out, "%s: %s %s\n  %d %s\n", tt.name, tt.method, tt.path, w.Code, body)
		for _, h := range []string{"Retry-After", "WWW-Authenticate", "Allow"} {
			if v := w.Header().Get(h); v != "" {
				fmt.Fprintf(&out, "  %s: %s\n", h, v)
			}
		}
	}
	golden := filepath.Join("testdata", "errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestErrorBodies -update)", err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("error answers differ from %s (go test -run TestErrorBodies -update rewrites it after review):\n%s", golden, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of got that differ from want.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestUnauthorizedIsOneAnswer sends every kind of bad header through the
// real auth.Verifier: the answers are byte-identical.
func TestUnauthorizedIsOneAnswer(t *testing.T) {
	const uuid, secret = "4633d686-f75d-4d1f-8415-02ce37d9e5f8", "abc123456"
	good, err := auth.Header(uuid, secret)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.srv.opts.Verifier = auth.NewVerifier(uuid, secret, auth.Limits{})
	tail := strings.TrimPrefix(good, uuid)
	headers := map[string]string{
		"missing":        "",
		"bearer":         "Bearer " + good,
		"garbage":        "hello",
		"other endpoint": "00000000-0000-4000-8000-000000000000" + tail,
		"wrong secret":   uuid + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"argon2d":        strings.Replace(good, "$argon2i$", "$argon2d$", 1),
		"under floor":    strings.Replace(good, "m=4096,t=3", "m=8,t=1", 1),
		"over window":    strings.Replace(good, "m=4096", "m=4194304", 1),
		"truncated":      good[:len(good)-20],
	}
	var first *httptest.ResponseRecorder
	for name, h := range headers {
		w := f.do("GET", "/traces", "", map[string]string{"Authorization": h})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d %s, want 401", name, w.Code, w.Body)
		}
		if first == nil {
			first = w
			continue
		}
		if w.Body.String() != first.Body.String() || w.Header().Get("WWW-Authenticate") != first.Header().Get("WWW-Authenticate") {
			t.Errorf("%s: answer %s %q differs from %s %q", name, w.Body, w.Header().Get("WWW-Authenticate"), first.Body, first.Header().Get("WWW-Authenticate"))
		}
	}
	if w := f.do("GET", "/traces", "", map[string]string{"Authorization": good}); w.Code != http.StatusOK {
		t.Errorf("good header: %d %s", w.Code, w.Body)
	}
}

// TestAccessLog checks one INFO line per request with method, route,
// status, duration and remote, never the Authorization value; refusals'
// errors at INFO; auth failures at WARN at most once per second with the
// count of those left out.
func TestAccessLog(t *testing.T) {
	f := newFixture(t)
	now := fixedNow
	f.srv.clock = func() time.Time { return now }
	f.do("GET", "/heartbeat", "", nil)
	f.do("POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":"x"}`, nil)
	f.do("GET", "/does/not/exist", "", nil)
	for range 5 {
		f.do("GET", "/traces", "", map[string]string{"Authorization": "secret-header-value"})
	}
	now = now.Add(1100 * time.Millisecond)
	f.do("GET", "/traces", "", map[string]string{"Authorization": "secret-header-value"})
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	want := []string{
		`level=INFO msg=request component=httpapi method=GET route=/heartbeat status=200 duration_seconds=`,
		`level=INFO msg=request component=httpapi method=POST route=/trace/start status=400 duration_seconds=`,
		`level=INFO msg=request component=httpapi method=GET route=unmatched status=404 duration_seconds=`,
		`level=WARN msg="authorization refused" component=httpapi method=GET route=/traces status=401 remote=192.0.2.1:1234 err="unauthorized: hash mismatch" suppressed=0`,
		`level=WARN msg="authorization refused" component=httpapi method=GET route=/traces status=401 remote=192.0.2.1:1234 err="unauthorized: hash mismatch" suppressed=4`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), f.logs)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to hold %s", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[1], `err="lasting: must be an integer number of seconds, got a string"`) || !strings.Contains(lines[0], "remote=192.0.2.1:1234") {
		t.Errorf("request lines lack err or remote:\n%s", f.logs)
	}
	if strings.Contains(f.logs.String(), "secret-header-value") {
		t.Errorf("the log holds the Authorization value:\n%s", f.logs)
	}
}

func TestRateLimiter(t *testing.T) {
	l := rateLimiter{period: time.Second}
	t0 := fixedNow
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int64
	}{
		{0, true, 0}, {10 * time.Millisecond, false, 0}, {999 * time.Millisecond, false, 0},
		{time.Second, true, 2}, {1500 * time.Millisecond, false, 0}, {5 * time.Second, true, 1}, {6 * time.Second, true, 0},
	}
	for _, s := range steps {
		ok, n := l.allow(t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("allow at +%s = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.suppressed)
		}
	}
}
