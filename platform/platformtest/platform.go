package platformtest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Option configures a Platform.
type Option func(*Platform)

// WithDiscardData keeps only a running SHA-256, the byte count and a 64-bit
// fingerprint per chunk (to tell an identical duplicate from a different
// one) instead of the bytes, for very large or benchmark traces.
// TraceRecord.Chunks and Data stay nil.
func WithDiscardData() Option { return func(p *Platform) { p.discard = true } }

// WithPathPrefix serves the route at prefix+"/submit" instead of "/submit"
// (prefix like "/api"); URL includes the prefix.
func WithPathPrefix(prefix string) Option {
	return func(p *Platform) { p.prefix = "/" + strings.Trim(prefix, "/") }
}

// WithMaxBody sets the largest accepted request body (default 64 MiB);
// larger ones are answered 413 and recorded as violations.
func WithMaxBody(n int64) Option { return func(p *Platform) { p.maxBody = n } }

// Platform is a running test receiver. All methods are safe for concurrent
// use, also while requests are being served.
type Platform struct {
	t       testing.TB
	uuid    string
	secret  string
	discard bool
	prefix  string
	maxBody int64
	seed    maphash.Seed // for chunk fingerprints when discarding

	mu         sync.Mutex
	traces     map[string]*traceState
	order      []string
	violations []string
	changed    chan struct{} // closed and replaced on every recorded change
	verified   map[string]bool
	failNext   int
	failStatus int
	retryAfter int
	delay      time.Duration

	requests      atomic.Int64
	connections   atomic.Int64
	verifications atomic.Int64
	injected      atomic.Int64

	srvMu  sync.Mutex
	addr   string
	srv    *http.Server
	served chan struct{} // closed when the current Serve returns
	closed bool
}

// New starts a receiver on 127.0.0.1 with a free port that accepts the
// Authorization of endpointUUID and secret. It is closed by t's Cleanup;
// a failure to listen fails t.
func New(t testing.TB, endpointUUID, secret string, opts ...Option) *Platform {
	t.Helper()
	p := &Platform{
		t:        t,
		uuid:     endpointUUID,
		secret:   secret,
		prefix:   "",
		maxBody:  64 << 20,
		traces:   make(map[string]*traceState),
		changed:  make(chan struct{}),
		verified: make(map[string]bool),
		seed:     maphash.MakeSeed(),
	}
	for _, o := range opts {
		o(p)
	}
	if p.prefix == "/" {
		p.prefix = ""
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("platformtest: listening: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

// serve starts an http.Server on ln; srvMu must be held or p unshared.
func (p *Platform) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.handle),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				p.connections.Add(1)
			}
		},
	}
	served := make(chan struct{})
	p.srv, p.served = srv, served
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Stop
	}()
}

// URL returns the base URL to configure as platform-url, like
// "http://127.0.0.1:41234" (plus the path prefix, if any); the route is
// URL()+"/submit".
func (p *Platform) URL() string { return "http://" + p.addr + p.prefix }

// Stop closes the listener and every open connection, so clients get
// connection refused until Restart. Handlers in flight see their request
// context cancelled and end on their own.
func (p *Platform) Stop() {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	p.stopLocked()
}

func (p *Platform) stopLocked() {
	if p.srv == nil {
		return
	}
	_ = p.srv.Close()
	<-p.served
	p.srv = nil
}

// Restart listens again on the same address after Stop (a no-op when
// running). It retries binding for a few seconds in case the port is
// briefly taken.
func (p *Platform) Restart() error {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.closed {
		return errors.New("restarting platformtest: closed")
	}
	if p.srv != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restarting platformtest on %s: %w", p.addr, err)
}

// Close stops the receiver for good and waits for its goroutines. It is
// called by the test's Cleanup and may be called earlier.
func (p *Platform) Close() {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	p.closed = true
	p.stopLocked()
}

// FailNext answers the next n requests with status (e.g. 503) without
// looking at or recording them; they still count in Requests.
func (p *Platform) FailNext(n int, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext, p.failStatus = n, status
}

// SetRetryAfter makes injected failures carry "Retry-After: seconds"; 0 or
// less removes it.
func (p *Platform) SetRetryAfter(seconds int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryAfter = seconds
}

// SetDelay delays every answer by d (0 for none). A recorded request is
// recorded before the delay.
func (p *Platform) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Trace returns a snapshot of what the trace at path delivered; a trace
// never heard of gives a zero record with Path set.
func (p *Platform) Trace(path string) TraceRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.traces[path]; ok {
		return t.snapshot(p.discard)
	}
	return TraceRecord{Path: path}
}

// Traces returns the paths of every trace that sent a recorded request, in
// order of first appearance.
func (p *Platform) Traces() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...)
}

// WaitFinished blocks until the finished message of the trace at path has
// arrived and returns the trace's record, or returns ctx's error (wrapped,
// with what had arrived so far).
func (p *Platform) WaitFinished(ctx context.Context, path string) (TraceRecord, error) {
	return p.WaitFor(ctx, path, func(r TraceRecord) bool { return r.Finished != nil })
}

// WaitFor blocks until cond holds for the trace at path, checking after
// every recorded request, and returns the record cond accepted, or ctx's
// error (wrapped, with what had arrived so far).
func (p *Platform) WaitFor(ctx context.Context, path string, cond func(TraceRecord) bool) (TraceRecord, error) {
	for {
		p.mu.Lock()
		changed := p.changed
		r := TraceRecord{Path: path}
		if t, ok := p.traces[path]; ok {
			r = t.snapshot(p.discard)
		}
		p.mu.Unlock()
		if cond(r) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for trace %s (started %v, %d chunks, %d bytes, finished %v): %w",
				path, r.Started, r.ChunkCount, r.Bytes, r.Finished != nil, ctx.Err())
		case <-changed:
		}
	}
}

// Violations returns every protocol or authorization violation seen so
// far, in order.
func (p *Platform) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}

// AssertNoViolations reports every violation seen so far as an error of t.
func (p *Platform) AssertNoViolations(t testing.TB) {
	t.Helper()
	for _, v := range p.Violations() {
		t.Errorf("platformtest violation: %s", v)
	}
}

// Stats counts what the receiver has seen.
type Stats struct {
	// Requests is every HTTP request received, injected failures included.
	Requests int64
	// Injected is how many requests got an injected failure.
	Injected int64
	// Connections is how many TCP connections were accepted.
	Connections int64
	// Verifications is how many argon2 verifications ran (once per
	// distinct header value, plus once per failing request).
	Verifications int64
	// Headers is how many distinct valid Authorization values were seen.
	Headers int
}

// Stats returns the receiver's counters.
func (p *Platform) Stats() Stats {
	p.mu.Lock()
	headers := len(p.verified)
	p.mu.Unlock()
	return Stats{
		Requests:      p.requests.Load(),
		Injected:      p.injected.Load(),
		Connections:   p.connections.Load(),
		Verifications: p.verifications.Load(),
		Headers:       headers,
	}
}

// Requests returns how many HTTP requests arrived, injected failures
// included.
func (p *Platform) Requests() int64 { return p.requests.Load() }

// Connections returns how many TCP connections were accepted.
func (p *Platform) Connections() int64 { return p.connections.Load() }

// AuthHeaders returns how many distinct valid Authorization values were
// seen.
func (p *Platform) AuthHeaders() int { return p.Stats().Headers }

// violate records a violation; mu must be held.
func (p *Platform) violate(format string, args ...any) {
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
	p.notify()
}

// notify wakes waiters; mu must be held.
func (p *Platform) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}
