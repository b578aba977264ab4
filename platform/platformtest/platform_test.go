package platformtest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testHeader is computed once: argon2 costs CPU.
var testHeader = sync.OnceValue(func() string { return Header(testUUID, testSecret) })

// put sends one raw request and returns the answer's status and
// Retry-After.
func put(t *testing.T, p *Platform, body string, mod ...func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, p.URL()+"/submit", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", testHeader())
	for _, m := range mod {
		m(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sending %s: %v", body, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func start(path string) string { return fmt.Sprintf(`{"trace":%q,"status":"start"}`, path) }
func chunk(path string, no int, data string) string {
	return fmt.Sprintf(`{"trace":%q,"no":%d,"field":%q}`, path, no, base64.StdEncoding.EncodeToString([]byte(data)))
}
func finished(path string, code int) string {
	return fmt.Sprintf(`{"trace":%q,"stderr":"err","code":%d,"status":"finished"}`, path, code)
}

func TestProtocolChecks(t *testing.T) {
	const tr = "/tmp/a.trace"
	// sha256("abcdef") = bef57ec7...
	okFinish := `{"trace":"/tmp/a.trace","stderr":"","code":0,"status":"finished","reason":"completed","chunks":2,"bytes":6,` +
		`"sha256":"bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"}`
	noAuth := func(r *http.Request) { r.Header.Del("Authorization") }
	badAuth := func(r *http.Request) {
		r.Header.Set("Authorization", strings.Replace(testHeader(), "$argon2i$", "$argon2id$", 1))
	}
	textPlain := func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }
	post := func(r *http.Request) { r.Method = http.MethodPost }

	type req struct {
		body string
		mod  func(*http.Request)
	}
	tests := []struct {
		name       string
		reqs       []req
		wantStatus int    // of the last request
		violation  string // substring of the first violation; "" for none
		dups       int
		chunks     int64
	}{
		{"clean trace", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {chunk(tr, 1, "def"), nil}, {okFinish, nil}}, 200, "", 0, 2},
		{"identical duplicates", []req{{start(tr), nil}, {start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {chunk(tr, 0, "abc"), nil},
			{chunk(tr, 1, "def"), nil}, {okFinish, nil}, {okFinish, nil}}, 200, "", 3, 2},
		{"gap", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {chunk(tr, 2, "def"), nil}}, 200, "gap", 0, 1},
		{"duplicate with other bytes", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {chunk(tr, 0, "abd"), nil}}, 200, "different bytes", 0, 1},
		{"chunk before start", []req{{chunk(tr, 0, "abc"), nil}}, 200, "before start", 0, 0},
		{"finished before start", []req{{finished(tr, 0), nil}}, 200, "finished before start", 0, 0},
		{"chunk after finished", []req{{start(tr), nil}, {finished(tr, 0), nil}, {chunk(tr, 0, "abc"), nil}}, 200, "after finished", 0, 0},
		{"start after finished", []req{{start(tr), nil}, {finished(tr, 0), nil}, {start(tr), nil}}, 200, "start after finished", 0, 0},
		{"start after chunks", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {start(tr), nil}}, 200, "start after 1 chunks", 0, 1},
		{"different second finished", []req{{start(tr), nil}, {finished(tr, 0), nil}, {finished(tr, 1), nil}}, 200, "second finished", 0, 0},
		{"finished with wrong counts", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {okFinish, nil}}, 200, "finished says 2 chunks", 0, 1},
		{"finished with wrong hash", []req{{start(tr), nil}, {chunk(tr, 0, "abc"), nil}, {chunk(tr, 1, "deg"), nil}, {okFinish, nil}}, 200, "sha256", 0, 2},
		{"empty chunk", []req{{start(tr), nil}, {chunk(tr, 0, ""), nil}}, 200, "is empty", 0, 0},
		{"missing auth", []req{{start(tr), noAuth}}, 401, "Authorization", 0, 0},
		{"wrong auth", []req{{start(tr), badAuth}}, 401, "Authorization", 0, 0},
		{"wrong content type", []req{{start(tr), textPlain}}, 415, "Content-Type", 0, 0},
		{"wrong method", []req{{start(tr), post}}, 405, "method POST", 0, 0},
		{"bad JSON", []req{{`{"trace":`, nil}}, 400, "decoding JSON", 0, 0},
		{"no as string", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":"0","field":"YWJj"}`, nil}}, 400, `"no" is not an integer`, 0, 0},
		{"negative no", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":-1,"field":"YWJj"}`, nil}}, 400, "negative", 0, 0},
		{"fractional code", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","stderr":"","code":1.5,"status":"finished"}`, nil}}, 400, `"code" is not an integer`, 0, 0},
		{"bad base64", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":0,"field":"YWJ"}`, nil}}, 400, "base64", 0, 0},
		{"unpadded base64", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":0,"field":"YWI"}`, nil}}, 400, "base64", 0, 0},
		{"base64 with newline", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":0,"field":"YW\nJj"}`, nil}}, 400, "", 0, 0},
		{"escaped base64 accepted", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":0,"field":"YW\u004aj"}`, nil}}, 200, "", 0, 1},
		{"unknown field", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","no":0,"feild":"YWJj","field":"YWJj"}`, nil}}, 400, "unknown fields", 0, 0},
		{"missing stderr", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","code":0,"status":"finished"}`, nil}}, 400, `missing "stderr"`, 0, 0},
		{"unknown status", []req{{`{"trace":"/tmp/a.trace","status":"begin"}`, nil}}, 400, "unknown \"status\"", 0, 0},
		{"empty trace", []req{{`{"trace":"","status":"start"}`, nil}}, 400, "empty", 0, 0},
		{"trace not a string", []req{{`{"trace":5,"status":"start"}`, nil}}, 400, "not a string", 0, 0},
		{"bad sha256", []req{{start(tr), nil}, {`{"trace":"/tmp/a.trace","stderr":"","code":0,"status":"finished","sha256":"xyz"}`, nil}}, 400, "64 hex", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(t, testUUID, testSecret)
			var status int
			for _, r := range tt.reqs {
				var mods []func(*http.Request)
				if r.mod != nil {
					mods = append(mods, r.mod)
				}
				status, _ = put(t, p, r.body, mods...)
			}
			if status != tt.wantStatus {
				t.Errorf("last status = %d, want %d", status, tt.wantStatus)
			}
			v := p.Violations()
			switch {
			case tt.violation == "" && tt.wantStatus == 200 && len(v) != 0:
				t.Errorf("violations = %q, want none", v)
			case tt.violation != "" && (len(v) == 0 || !strings.Contains(v[0], tt.violation)):
				t.Errorf("violations = %q, want the first containing %q", v, tt.violation)
			case tt.wantStatus != 200 && len(v) == 0:
				t.Errorf("no violation recorded for a %d answer", tt.wantStatus)
			}
			rec := p.Trace(tr)
			if rec.Duplicates != tt.dups {
				t.Errorf("Duplicates = %d, want %d", rec.Duplicates, tt.dups)
			}
			if rec.ChunkCount != tt.chunks || int64(len(rec.Chunks)) != tt.chunks {
				t.Errorf("ChunkCount = %d, len(Chunks) = %d, want %d", rec.ChunkCount, len(rec.Chunks), tt.chunks)
			}
		})
	}
}

func TestRecord(t *testing.T) {
	for _, discard := range []bool{false, true} {
		t.Run(fmt.Sprintf("discard=%v", discard), func(t *testing.T) {
			var opts []Option
			if discard {
				opts = append(opts, WithDiscardData())
			}
			p := New(t, testUUID, testSecret, opts...)
			const a, b = "/tmp/a.trace", "/tmp/b.trace"
			for _, body := range []string{start(a), start(b), chunk(a, 0, "hello "), chunk(b, 0, "other"),
				chunk(a, 1, "world"), chunk(a, 1, "world"), chunk(a, 1, "w0rld"), finished(a, 137)} {
				if status, _ := put(t, p, body); status != 200 {
					t.Fatalf("%s: status %d", body, status)
				}
			}
			if got := p.Traces(); len(got) != 2 || got[0] != a || got[1] != b {
				t.Errorf("Traces = %q, want [%s %s]", got, a, b)
			}
			if v := p.Violations(); len(v) != 1 || !strings.Contains(v[0], "chunk 1 repeated with different bytes") {
				t.Errorf("Violations = %q, want the one different duplicate", v)
			}
			r := p.Trace(a)
			want := TraceRecord{Path: a, Started: true, ChunkCount: 2, Bytes: 11, Duplicates: 1, Requests: 6,
				SHA256:   "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", // sha256("hello world")
				Finished: &FinishedMsg{Trace: a, Stderr: "err", Code: 137, Status: "finished"}}
			if r.Path != want.Path || r.Started != want.Started || r.ChunkCount != want.ChunkCount || r.Bytes != want.Bytes ||
				r.Duplicates != want.Duplicates || r.Requests != want.Requests || r.SHA256 != want.SHA256 ||
				r.Finished == nil || *r.Finished != *want.Finished {
				t.Errorf("Trace = %+v (finished %+v), want %+v (finished %+v)", r, r.Finished, want, want.Finished)
			}
			if discard {
				if r.Data != nil || r.Chunks != nil {
					t.Errorf("discarding, yet Data = %q, Chunks = %q", r.Data, r.Chunks)
				}
			} else if string(r.Data) != "hello world" || len(r.Chunks) != 2 || string(r.Chunks[0]) != "hello " || string(r.Chunks[1]) != "world" {
				t.Errorf("Data = %q, Chunks = %q", r.Data, r.Chunks)
			}
			if st := p.Stats(); st.Requests != 8 || st.Headers != 1 || st.Verifications != 1 || st.Connections < 1 {
				t.Errorf("Stats = %+v, want 8 requests, 1 header verified once", st)
			}
		})
	}
}

func TestPathPrefix(t *testing.T) {
	p := New(t, testUUID, testSecret, WithPathPrefix("/api/"))
	if !strings.HasSuffix(p.URL(), "/api") {
		t.Fatalf("URL = %s, want .../api", p.URL())
	}
	if status, _ := put(t, p, start("/x")); status != 200 {
		t.Fatalf("status %d at the prefixed route", status)
	}
	p.AssertNoViolations(t)
}

func TestMaxBody(t *testing.T) {
	p := New(t, testUUID, testSecret, WithMaxBody(64))
	if status, _ := put(t, p, chunk("/x", 0, strings.Repeat("x", 100))); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", status)
	}
	if len(p.Violations()) != 1 {
		t.Fatalf("Violations = %q, want one", p.Violations())
	}
}

func TestFailNext(t *testing.T) {
	p := New(t, testUUID, testSecret)
	p.FailNext(2, http.StatusServiceUnavailable)
	p.SetRetryAfter(3)
	for i := range 2 {
		status, ra := put(t, p, start("/x"))
		if status != 503 || ra != "3" {
			t.Fatalf("request %d: status %d Retry-After %q, want 503 and 3", i, status, ra)
		}
	}
	if p.Trace("/x").Requests != 0 {
		t.Fatal("an injected failure was recorded")
	}
	if status, ra := put(t, p, start("/x")); status != 200 || ra != "" {
		t.Fatalf("third request: status %d Retry-After %q, want 200 and none", status, ra)
	}
	if st := p.Stats(); st.Requests != 3 || st.Injected != 2 {
		t.Fatalf("Stats = %+v, want 3 requests, 2 injected", st)
	}
	p.AssertNoViolations(t)
}

func TestStopRestart(t *testing.T) {
	p := New(t, testUUID, testSecret)
	url := p.URL()
	put(t, p, start("/x"))
	p.Stop()
	req, _ := http.NewRequest(http.MethodPut, url+"/submit", strings.NewReader(start("/x")))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request to a stopped platform succeeded")
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.URL() != url {
		t.Fatalf("URL changed across restart: %s -> %s", url, p.URL())
	}
	if status, _ := put(t, p, chunk("/x", 0, "data")); status != 200 {
		t.Fatalf("status %d after restart", status)
	}
	if r := p.Trace("/x"); r.ChunkCount != 1 {
		t.Fatalf("record lost across restart: %+v", r)
	}
	p.AssertNoViolations(t)
}

func TestDelay(t *testing.T) {
	p := New(t, testUUID, testSecret)
	p.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.URL()+"/submit", strings.NewReader(start("/x")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", testHeader())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("delayed answer arrived")
	}
	if !p.Trace("/x").Started {
		t.Fatal("delayed request was not recorded before the delay")
	}
}

func TestWaitFinished(t *testing.T) {
	p := New(t, testUUID, testSecret)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := p.WaitFinished(ctx, "/x")
		if err == nil && (r.Finished == nil || r.Finished.Code != 3) {
			err = fmt.Errorf("record %+v", r)
		}
		done <- err
	}()
	put(t, p, start("/x"))
	put(t, p, finished("/x", 3))
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.WaitFinished(ctx, "/never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFinished on a silent trace = %v, want DeadlineExceeded", err)
	}
}
