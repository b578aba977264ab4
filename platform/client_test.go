package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

const (
	testUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	testSecret = "abc123456"
)

// testHeader is computed once: argon2 costs CPU.
var testHeader = sync.OnceValue(func() string { return platformtest.Header(testUUID, testSecret) })

// retryLog records OnRetry calls.
type retryLog struct {
	mu    sync.Mutex
	calls []retryCall
	hook  func(n int) // called with the number of calls so far
}

type retryCall struct {
	kind, trace string
	attempt     int
	err         error
	wait        time.Duration
}

func (l *retryLog) onRetry(kind, trace string, attempt int, err error, wait time.Duration) {
	l.mu.Lock()
	l.calls = append(l.calls, retryCall{kind, trace, attempt, err, wait})
	n := len(l.calls)
	hook := l.hook
	l.mu.Unlock()
	if hook != nil {
		hook(n)
	}
}

func (l *retryLog) get() []retryCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]retryCall(nil), l.calls...)
}

// newTestClient returns a client of p with tiny backoffs and a retry log.
func newTestClient(t *testing.T, p *platformtest.Platform, o Options) (*Client, *retryLog) {
	t.Helper()
	log := &retryLog{}
	if o.RetryMin == 0 {
		o.RetryMin = time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 20 * time.Millisecond
	}
	o.OnRetry = log.onRetry
	c, err := New(p.URL(), testHeader(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, log
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientDeliversTrace(t *testing.T) {
	for _, prefix := range []string{"", "/api/v1"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			p := platformtest.New(t, testUUID, testSecret, platformtest.WithPathPrefix(prefix))
			c, log := newTestClient(t, p, Options{})
			ctx := testCtx(t)
			chunks := [][]byte{[]byte("{\"probe\":\"a\"}\n"), allBytes(), bytes.Repeat([]byte("z"), 51200)}
			var all []byte
			if err := c.Start(ctx, weirdPath); err != nil {
				t.Fatal(err)
			}
			for i, ch := range chunks {
				if err := c.Chunk(ctx, weirdPath, int64(i), ch); err != nil {
					t.Fatal(err)
				}
				all = append(all, ch...)
			}
			sum := sha256.Sum256(all)
			fin := Finish{Stderr: "bye\n", Code: 130, Reason: "killed", Chunks: 3, Bytes: int64(len(all)), SHA256: hex.EncodeToString(sum[:])}
			if err := c.Finished(ctx, weirdPath, fin); err != nil {
				t.Fatal(err)
			}
			p.AssertNoViolations(t)
			path := strings.ToValidUTF8(weirdPath, "\uFFFD")
			r := p.Trace(path)
			if !r.Started || r.ChunkCount != 3 || !bytes.Equal(r.Data, all) || r.Duplicates != 0 || r.Requests != 5 {
				t.Errorf("record: started %v, %d chunks, %d duplicates, %d requests, data equal %v",
					r.Started, r.ChunkCount, r.Duplicates, r.Requests, bytes.Equal(r.Data, all))
			}
			want := platformtest.FinishedMsg{Trace: path, Stderr: "bye\n", Code: 130, Status: "finished", Reason: "killed",
				Chunks: 3, Bytes: int64(len(all)), SHA256: fin.SHA256}
			if r.Finished == nil || *r.Finished != want {
				t.Errorf("finished = %+v, want %+v", r.Finished, want)
			}
			if calls := log.get(); len(calls) != 0 {
				t.Errorf("unexpected retries: %+v", calls)
			}
		})
	}
}

func TestClientRetriesFailures(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusUnauthorized, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			p := platformtest.New(t, testUUID, testSecret)
			c, log := newTestClient(t, p, Options{})
			ctx := testCtx(t)
			if err := c.Start(ctx, "/tmp/a.trace"); err != nil {
				t.Fatal(err)
			}
			before := p.Requests()
			p.FailNext(3, status)
			if err := c.Chunk(ctx, "/tmp/a.trace", 0, []byte("data")); err != nil {
				t.Fatal(err)
			}
			if n := p.Requests() - before; n != 4 {
				t.Errorf("chunk took %d requests, want 4", n)
			}
			calls := log.get()
			if len(calls) != 3 {
				t.Fatalf("OnRetry called %d times, want 3", len(calls))
			}
			for i, call := range calls {
				var se *StatusError
				if call.kind != KindChunk || call.trace != "/tmp/a.trace" || call.attempt != i+1 ||
					!errors.As(call.err, &se) || se.StatusCode != status || !strings.Contains(se.Body, "injected") {
					t.Errorf("retry %d = %+v", i, call)
				}
			}
			if r := p.Trace("/tmp/a.trace"); r.ChunkCount != 1 || string(r.Data) != "data" {
				t.Errorf("record %+v", r)
			}
			p.AssertNoViolations(t)
		})
	}
}

func TestClientHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter int
		retryMax   time.Duration
		want       time.Duration
	}{
		{"503 seconds", http.StatusServiceUnavailable, 7, 30 * time.Second, 7 * time.Second},
		{"429 seconds", http.StatusTooManyRequests, 2, 30 * time.Second, 2 * time.Second},
		{"capped at RetryMax", http.StatusServiceUnavailable, 100, 10 * time.Second, 10 * time.Second},
		{"ignored on 500", http.StatusInternalServerError, 7, 30 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := platformtest.New(t, testUUID, testSecret)
			c, log := newTestClient(t, p, Options{RetryMax: tt.retryMax})
			var mu sync.Mutex
			var slept []time.Duration
			c.randN = func(int64) int64 { return 0 } // jitter picks 0: any wait is Retry-After's
			c.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				slept = append(slept, d)
				mu.Unlock()
				return ctx.Err()
			}
			p.FailNext(2, tt.status)
			p.SetRetryAfter(tt.retryAfter)
			if err := c.Start(testCtx(t), "/tmp/a.trace"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(slept) != 2 || slept[0] != tt.want || slept[1] != tt.want {
				t.Errorf("slept %v, want [%v %v]", slept, tt.want, tt.want)
			}
			for _, call := range log.get() {
				if call.wait != tt.want {
					t.Errorf("OnRetry wait = %v, want %v", call.wait, tt.want)
				}
			}
		})
	}
}

func TestClientRetriesTransportErrors(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	c, log := newTestClient(t, p, Options{})
	ctx := testCtx(t)
	if err := c.Start(ctx, "/tmp/a.trace"); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	restarted := make(chan error, 1)
	log.hook = func(n int) {
		if n == 3 { // after a few refused attempts
			go func() { restarted <- p.Restart() }()
		}
	}
	if err := c.Chunk(ctx, "/tmp/a.trace", 0, []byte("survived")); err != nil {
		t.Fatal(err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	calls := log.get()
	if len(calls) < 3 {
		t.Fatalf("only %d retries", len(calls))
	}
	var se *StatusError
	if errors.As(calls[0].err, &se) || !strings.Contains(calls[0].err.Error(), "sending request") {
		t.Errorf("first retry's error = %v, want a transport error", calls[0].err)
	}
	if r := p.Trace("/tmp/a.trace"); string(r.Data) != "survived" {
		t.Errorf("data = %q", r.Data)
	}
	p.AssertNoViolations(t)
}

func TestClientStopsOnContext(t *testing.T) {
	t.Run("cancel while failing", func(t *testing.T) {
		p := platformtest.New(t, testUUID, testSecret)
		c, log := newTestClient(t, p, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log.hook = func(n int) {
			if n == 3 {
				cancel()
			}
		}
		p.FailNext(1<<30, http.StatusServiceUnavailable)
		err := c.Chunk(ctx, "/tmp/a.trace", 5, []byte("x"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Chunk = %v, want context.Canceled", err)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 503 {
			t.Errorf("Chunk = %v, want the last 503 wrapped too", err)
		}
		if !strings.Contains(err.Error(), "submitting chunk 5 of /tmp/a.trace") {
			t.Errorf("error %q lacks context", err)
		}
		if n := len(log.get()); n != 3 {
			t.Errorf("%d retries after cancel at the third, want 3", n)
		}
	})
	t.Run("deadline while the platform hangs", func(t *testing.T) {
		p := platformtest.New(t, testUUID, testSecret)
		c, _ := newTestClient(t, p, Options{})
		p.SetDelay(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := c.Start(ctx, "/tmp/a.trace"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Start = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		p := platformtest.New(t, testUUID, testSecret)
		c, _ := newTestClient(t, p, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Finished(ctx, "/tmp/a.trace", Finish{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Finished = %v, want context.Canceled", err)
		}
		if n := p.Requests(); n != 0 {
			t.Errorf("%d requests sent with a cancelled context", n)
		}
	})
}

func TestClientAttemptTimeout(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	c, log := newTestClient(t, p, Options{AttemptTimeout: 200 * time.Millisecond})
	ctx := testCtx(t)
	if err := c.Start(ctx, "/tmp/a.trace"); err != nil {
		t.Fatal(err)
	}
	p.SetDelay(time.Hour)
	log.hook = func(int) { p.SetDelay(0) }
	if err := c.Chunk(ctx, "/tmp/a.trace", 0, []byte("once")); err != nil {
		t.Fatal(err)
	}
	if calls := log.get(); len(calls) != 1 || !errors.Is(calls[0].err, context.DeadlineExceeded) {
		t.Errorf("retries = %+v, want one timed-out attempt", calls)
	}
	// The timed-out attempt was recorded before the platform's delay, so
	// the retry is a genuine duplicate.
	if r := p.Trace("/tmp/a.trace"); r.ChunkCount != 1 || r.Duplicates != 1 || string(r.Data) != "once" {
		t.Errorf("record: %d chunks, %d duplicates, data %q", r.ChunkCount, r.Duplicates, r.Data)
	}
	p.AssertNoViolations(t)
}

func TestClientKeepAlive(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	c, _ := newTestClient(t, p, Options{})
	ctx := testCtx(t)
	if err := c.Start(ctx, "/tmp/a.trace"); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 3200)
	for i := range 200 {
		if err := c.Chunk(ctx, "/tmp/a.trace", int64(i), data); err != nil {
			t.Fatal(err)
		}
	}
	// Injected failures must not cost the connection either.
	p.FailNext(3, http.StatusServiceUnavailable)
	if err := c.Finished(ctx, "/tmp/a.trace", Finish{Chunks: 200, Bytes: 200 * int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("%d connections for 205 sequential requests, want 1", n)
	}
	if r := p.Trace("/tmp/a.trace"); r.ChunkCount != 200 || r.Bytes != int64(200*len(data)) {
		t.Errorf("record: %d chunks, %d bytes", r.ChunkCount, r.Bytes)
	}
	p.AssertNoViolations(t)
}

// TestClientConcurrentTraces sends many traces at once through failures,
// checking that pooled body buffers are never shared between requests.
func TestClientConcurrentTraces(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	c, _ := newTestClient(t, p, Options{})
	ctx := testCtx(t)
	const traces, chunks = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, traces)
	for i := range traces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/tmp/t%d.trace", i)
			if err := c.Start(ctx, path); err != nil {
				errs <- err
				return
			}
			var sent int64
			for n := range chunks {
				if n%10 == 0 {
					p.FailNext(2, http.StatusServiceUnavailable)
				}
				data := bytes.Repeat([]byte{byte('a' + i)}, 1000+n*97+i)
				if err := c.Chunk(ctx, path, int64(n), data); err != nil {
					errs <- err
					return
				}
				sent += int64(len(data))
			}
			if err := c.Finished(ctx, path, Finish{Reason: "completed", Chunks: chunks, Bytes: sent}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p.AssertNoViolations(t)
	for i := range traces {
		r := p.Trace(fmt.Sprintf("/tmp/t%d.trace", i))
		if r.Finished == nil || r.ChunkCount != chunks {
			t.Fatalf("trace %d: %d chunks, finished %v", i, r.ChunkCount, r.Finished != nil)
		}
		for n, ch := range r.Chunks {
			if want := bytes.Repeat([]byte{byte('a' + i)}, 1000+n*97+i); !bytes.Equal(ch, want) {
				t.Fatalf("trace %d chunk %d corrupted", i, n)
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name, url, auth string
		o               Options
		wantURL         string // "" means New must fail
	}{
		{"plain", "http://127.0.0.1:8080", "h", Options{}, "http://127.0.0.1:8080/submit"},
		{"trailing slash", "http://127.0.0.1:8080/", "h", Options{}, "http://127.0.0.1:8080/submit"},
		{"prefix", "https://platform.example/api/v1/", "h", Options{}, "https://platform.example/api/v1/submit"},
		{"prefix without slash", "https://platform.example/api", "h", Options{}, "https://platform.example/api/submit"},
		{"query kept", "http://h:1/p?x=1", "h", Options{}, "http://h:1/p/submit?x=1"},
		{"no scheme", "127.0.0.1:8080", "h", Options{}, ""},
		{"ftp", "ftp://h/", "h", Options{}, ""},
		{"no host", "http:///submit", "h", Options{}, ""},
		{"user info", "http://u:p@h/", "h", Options{}, ""},
		{"fragment", "http://h/#x", "h", Options{}, ""},
		{"bad URL", "http://h:port/", "h", Options{}, ""},
		{"empty authorization", "http://h/", "", Options{}, ""},
		{"newline in authorization", "http://h/", "a\nb", Options{}, ""},
		{"negative timeout", "http://h/", "h", Options{AttemptTimeout: -1}, ""},
		{"min above max", "http://h/", "h", Options{RetryMin: time.Minute, RetryMax: time.Second}, ""},
		{"min above default max", "http://h/", "h", Options{RetryMin: time.Hour}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, tt.auth, tt.o)
			if tt.wantURL == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("New = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.URL() != tt.wantURL {
				t.Errorf("URL = %s, want %s", c.URL(), tt.wantURL)
			}
			if c.attemptTimeout != DefaultAttemptTimeout || c.retryMin != DefaultRetryMin || c.retryMax != DefaultRetryMax {
				t.Errorf("defaults not applied: %v %v %v", c.attemptTimeout, c.retryMin, c.retryMax)
			}
		})
	}
}

func TestClientRedirects(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	for _, tt := range []struct {
		status    int
		delivered bool
	}{{http.StatusTemporaryRedirect, true}, {http.StatusPermanentRedirect, true}, {http.StatusFound, false}, {http.StatusMovedPermanently, false}} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, p.URL()+"/submit", tt.status)
			}))
			defer redirector.Close()
			log := &retryLog{}
			c, err := New(redirector.URL, testHeader(), Options{RetryMin: time.Millisecond, RetryMax: time.Millisecond, OnRetry: log.onRetry})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			log.hook = func(n int) {
				if n == 2 {
					cancel()
				}
			}
			path := fmt.Sprintf("/tmp/r%d.trace", tt.status)
			err = c.Start(ctx, path)
			started := p.Trace(path).Started
			if tt.delivered {
				if err != nil || !started {
					t.Fatalf("Start = %v, started %v; want delivered through the redirect", err, started)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status || started {
				t.Fatalf("Start = %v, started %v; want the %d retried until cancelled, nothing delivered", err, started, tt.status)
			}
		})
	}
	p.AssertNoViolations(t)
}

// TestPreparedChunk: a prepared chunk is sent once with the bytes Chunk
// would send; sending it again is refused and Release after sending does
// nothing.
func TestPreparedChunk(t *testing.T) {
	p := platformtest.New(t, testUUID, testSecret)
	c, err := New(p.URL(), testHeader(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	const trace = "/tmp/prepared.trace"
	if err := c.Start(ctx, trace); err != nil {
		t.Fatal(err)
	}
	first := c.PrepareChunk(trace, 0, []byte("one\n"))
	second := c.PrepareChunk(trace, 1, []byte("two\n")) // encoded while the first is not sent yet
	unsent := c.PrepareChunk(trace, 2, []byte("never\n"))
	for _, pc := range []*PreparedChunk{first, second} {
		if err := c.SendChunk(ctx, pc); err != nil {
			t.Fatal(err)
		}
	}
	unsent.Release()
	unsent.Release()
	first.Release()
	if err := c.SendChunk(ctx, first); err == nil {
		t.Error("a prepared chunk was sent twice")
	}
	if got := string(p.Trace(trace).Data); got != "one\ntwo\n" {
		t.Errorf("platform holds %q", got)
	}
	p.AssertNoViolations(t)
}
