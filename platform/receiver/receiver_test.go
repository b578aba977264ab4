package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

const tp = "/tmp/4f1c.trace"

func start() string { return `{"trace":"` + tp + `","status":"start"}` }
func chunk(no int, data string) string {
	return fmt.Sprintf(`{"trace":%q,"no":%d,"field":%q}`, tp, no, base64.StdEncoding.EncodeToString([]byte(data)))
}
func finished(chunks, bytes int, data string) string {
	sum := sha256.Sum256([]byte(data))
	return fmt.Sprintf(`{"trace":%q,"stderr":"","code":0,"status":"finished","reason":"completed","chunks":%d,"bytes":%d,"sha256":%q}`,
		tp, chunks, bytes, hex.EncodeToString(sum[:]))
}

type step struct {
	body string
	want Result // "" when an error is expected
	err  error  // ErrProtocol or ErrInvalid
}

func TestProtocol(t *testing.T) {
	cases := []struct {
		name    string
		steps   []step
		wantOut string
		wantFin bool
	}{
		{"in order", []step{{start(), Accepted, nil}, {chunk(0, "a\n"), Accepted, nil}, {chunk(1, "b\n"), Accepted, nil}, {finished(2, 4, "a\nb\n"), Accepted, nil}}, "a\nb\n", true},
		{"no output", []step{{start(), Accepted, nil}, {`{"trace":"` + tp + `","stderr":"x","code":1,"status":"finished"}`, Accepted, nil}}, "", true},
		{"start repeated", []step{{start(), Accepted, nil}, {start(), Duplicate, nil}, {chunk(0, "a"), Accepted, nil}, {start(), Duplicate, nil}}, "a", false},
		{"identical resend", []step{{start(), Accepted, nil}, {chunk(0, "a"), Accepted, nil}, {chunk(1, "b"), Accepted, nil}, {chunk(0, "a"), Duplicate, nil}, {chunk(1, "b"), Duplicate, nil}, {chunk(2, "c"), Accepted, nil}}, "abc", false},
		{"differing resend", []step{{start(), Accepted, nil}, {chunk(0, "a"), Accepted, nil}, {chunk(0, "A"), "", ErrProtocol}, {chunk(0, "aa"), "", ErrProtocol}, {chunk(1, "b"), Accepted, nil}}, "ab", false},
		{"gap", []step{{start(), Accepted, nil}, {chunk(1, "b"), "", ErrProtocol}, {chunk(0, "a"), Accepted, nil}}, "a", false},
		{"chunk before start", []step{{chunk(0, "a"), "", ErrProtocol}, {start(), Accepted, nil}}, "", false},
		{"finished before start", []step{{finished(0, 0, ""), "", ErrProtocol}}, "", false},
		{"finished with wrong count", []step{{start(), Accepted, nil}, {chunk(0, "a"), Accepted, nil}, {finished(2, 1, "a"), "", ErrProtocol}, {finished(1, 2, "a"), "", ErrProtocol}, {finished(1, 1, "b"), "", ErrProtocol}, {finished(1, 1, "a"), Accepted, nil}}, "a", true},
		{"after finished", []step{{start(), Accepted, nil}, {chunk(0, "a"), Accepted, nil}, {finished(1, 1, "a"), Accepted, nil}, {chunk(0, "a"), Duplicate, nil}, {chunk(1, "b"), "", ErrProtocol}, {finished(1, 1, "a"), Duplicate, nil}, {start(), Duplicate, nil}}, "a", true},
		{"malformed", []step{{`{"trace":"` + tp + `","no":0,"field":"not base64!"}`, "", ErrInvalid}, {`{"trace":"` + tp + `","no":-1,"field":""}`, "", ErrInvalid}, {`{"trace":"/tmp/../x/.hidden.trace","status":"start"}`, "", ErrInvalid}, {`{"trace":"` + tp + `","status":"begin"}`, "", ErrInvalid}, {`{"trace":"` + tp + `","no":0,"field":"","extra":1}`, "", ErrInvalid}, {`[]`, "", ErrInvalid}, {`{"trace":"` + tp + `"}`, "", ErrInvalid}}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newTestReceiver(t, dir)
			for i, s := range c.steps {
				res, err := submitBody(r, s.body)
				if s.err != nil {
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d %s: %v, %v; want an error wrapping %v", i, s.body, res, err, s.err)
					}
					continue
				}
				if err != nil || res != s.want {
					t.Fatalf("step %d %s: %v, %v; want %v", i, s.body, res, err, s.want)
				}
			}
			checkFiles(t, dir, c.wantOut, c.wantFin)
			// A restarted receiver sees the same state.
			r.Close()
			r2 := newTestReceiver(t, dir)
			for i, s := range c.steps {
				if s.err != nil || !strings.Contains(s.body, `"no"`) {
					continue
				}
				if res, err := submitBody(r2, s.body); err != nil && !errors.Is(err, ErrProtocol) || res == Accepted {
					t.Errorf("after restart, resending step %d: %v, %v; want duplicate or refused", i, res, err)
				}
			}
			checkFiles(t, dir, c.wantOut, c.wantFin)
		})
	}
}

func newTestReceiver(t *testing.T, dir string) *Receiver {
	t.Helper()
	r, err := New(Options{Dir: dir, Verifier: auth.NewVerifier("u", "s", auth.Limits{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func submitBody(r *Receiver, body string) (Result, error) {
	m, err := ParseMessage([]byte(body))
	if err != nil {
		return "", err
	}
	return r.Submit(m)
}

func checkFiles(t *testing.T, dir, wantOut string, wantFin bool) {
	t.Helper()
	out, err := os.ReadFile(filepath.Join(dir, "4f1c.out"))
	if err != nil && wantOut != "" {
		t.Fatal(err)
	}
	if string(out) != wantOut {
		t.Errorf(".out holds %q, want %q", out, wantOut)
	}
	_, err = os.Stat(filepath.Join(dir, "4f1c.json"))
	if (err == nil) != wantFin {
		t.Errorf(".json exists: %v, want %v", err == nil, wantFin)
	}
}

// TestTornTail cuts the files as a kill -9 between the writes of one chunk
// leaves them: the next receiver drops the unacknowledged part, and the
// sender's resend is written exactly once.
func TestTornTail(t *testing.T) {
	for _, c := range []struct {
		name     string
		outExtra string // bytes written to .out but never indexed
		idxCut   int64  // bytes of the last index record kept
	}{
		{"output written, index not", "partial", 0},
		{"index record torn", "b", 20},
		{"clean", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newTestReceiver(t, dir)
			for _, b := range []string{start(), chunk(0, "a")} {
				if _, err := submitBody(r, b); err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
			appendFile(t, filepath.Join(dir, "4f1c.out"), c.outExtra)
			appendFile(t, filepath.Join(dir, "4f1c.idx"), strings.Repeat("x", int(c.idxCut)))
			r2 := newTestReceiver(t, dir)
			if res, err := submitBody(r2, chunk(1, "b")); err != nil || res != Accepted {
				t.Fatalf("chunk 1 after restart: %v, %v", res, err)
			}
			if res, err := submitBody(r2, finished(2, 2, "ab")); err != nil || res != Accepted {
				t.Fatalf("finished after restart: %v, %v", res, err)
			}
			checkFiles(t, dir, "ab", true)
		})
	}
}

func appendFile(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(s)
}

func TestHTTP(t *testing.T) {
	const uuid, secret = "4633d686-f75d-4d1f-8415-02ce37d9e5f8", "abc123456"
	good, err := auth.Header(uuid, secret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Dir: t.TempDir(), Verifier: auth.NewVerifier(uuid, secret, auth.Limits{}), MaxBodyBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cases := []struct {
		name, method, path, auth, ct, body string
		want                               int
	}{
		{"start", "PUT", "/submit", good, "application/json", start(), 200},
		{"chunk", "PUT", "/submit", good, "application/json; charset=utf-8", chunk(0, "x"), 200},
		{"duplicate", "PUT", "/submit", good, "application/json", chunk(0, "x"), 200},
		{"gap", "PUT", "/submit", good, "application/json", chunk(5, "x"), 409},
		{"no auth", "PUT", "/submit", "", "application/json", chunk(1, "x"), 401},
		{"wrong secret", "PUT", "/submit", strings.Replace(good, uuid, "00000000-0000-4000-8000-000000000000", 1), "application/json", chunk(1, "x"), 401},
		{"text body", "PUT", "/submit", good, "text/plain", chunk(1, "x"), 415},
		{"too big", "PUT", "/submit", good, "application/json", chunk(1, strings.Repeat("x", 300)), 413},
		{"malformed", "PUT", "/submit", good, "application/json", `{"trace":`, 400},
		{"GET", "GET", "/submit", good, "", "", 405},
		{"other path", "PUT", "/other", good, "application/json", start(), 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(context.Background(), c.method, c.path, strings.NewReader(c.body))
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != c.want || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("%d %s %s, want %d JSON", w.Code, w.Header().Get("Content-Type"), w.Body, c.want)
			}
			if c.want >= 400 && !strings.Contains(w.Body.String(), `"error"`) {
				t.Errorf("error body %s has no \"error\"", w.Body)
			}
		})
	}
	_ = http.StatusOK
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{start(), chunk(0, "abc"), finished(1, 3, "abc"), `{"trace":"x","no":1e3,"field":""}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if m.ID == "" || strings.ContainsAny(m.ID, "/\x00") || strings.HasPrefix(m.ID, ".") {
			t.Fatalf("unsafe id %q from %q", m.ID, m.Trace)
		}
		if m.Kind < Start || m.Kind > Finished {
			t.Fatalf("kind %v", m.Kind)
		}
	})
}

// TestConcurrentTraces submits several traces at once, each in order.
func TestConcurrentTraces(t *testing.T) {
	dir := t.TempDir()
	r := newTestReceiver(t, dir)
	const traces, chunks = 8, 50
	errs := make(chan error, traces)
	for i := range traces {
		go func() {
			path := fmt.Sprintf("/tmp/t%d.trace", i)
			var all strings.Builder
			send := func(body string) error {
				m, err := ParseMessage([]byte(body))
				if err == nil {
					_, err = r.Submit(m)
				}
				return err
			}
			if err := send(fmt.Sprintf(`{"trace":%q,"status":"start"}`, path)); err != nil {
				errs <- err
				return
			}
			for no := range chunks {
				data := fmt.Sprintf("%d-%d\n", i, no)
				all.WriteString(data)
				if err := send(fmt.Sprintf(`{"trace":%q,"no":%d,"field":%q}`, path, no, base64.StdEncoding.EncodeToString([]byte(data)))); err != nil {
					errs <- err
					return
				}
			}
			sum := sha256.Sum256([]byte(all.String()))
			errs <- send(fmt.Sprintf(`{"trace":%q,"stderr":"","code":0,"status":"finished","chunks":%d,"bytes":%d,"sha256":%q}`, path, chunks, all.Len(), hex.EncodeToString(sum[:])))
		}()
	}
	for range traces {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i := range traces {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("t%d.out", i)))
		if err != nil || strings.Count(string(b), "\n") != chunks {
			t.Errorf("t%d.out: %d lines, %v", i, strings.Count(string(b), "\n"), err)
		}
	}
}
