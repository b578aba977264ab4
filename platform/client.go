package platform

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Finish is the content of a trace's finished message (messages.Finish,
// which the runtime's Submitter interface uses). Chunks and Bytes are
// always in the body, also when 0; an empty Reason or SHA256 is left out.
type Finish = messages.Finish

// Client submits trace messages to the platform. It is safe for concurrent
// use; see the package documentation for ordering.
type Client struct {
	url            string
	auth           string
	hc             *http.Client
	attemptTimeout time.Duration
	retryMin       time.Duration
	retryMax       time.Duration
	onRetry        func(kind, trace string, attempt int, err error, wait time.Duration)
	onRecovered    func(kind, trace string, attempts int)
	onAcked        func(kind, trace string, took time.Duration)

	// Seams replaced by tests.
	randN func(n int64) int64 // uniform in [0, n)
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time

	bufs sync.Pool // *[]byte request bodies
}

// New returns a Client that submits to baseURL joined with "submit" (so
// "http://host:8080" and "http://host:8080/prefix/" both work) and sends
// authorization, a precomputed Authorization header value, with every
// request. Errors wrap ErrInvalid.
func New(baseURL, authorization string, o Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing platform URL: %w: %w", err, ErrInvalid)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("parsing platform URL %q: scheme must be http or https: %w", baseURL, ErrInvalid)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("parsing platform URL %q: need a host and no user info or fragment: %w", baseURL, ErrInvalid)
	}
	if err := checkHeaderValue(authorization); err != nil {
		return nil, fmt.Errorf("checking authorization: %w: %w", err, ErrInvalid)
	}
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		url:            u.JoinPath("submit").String(),
		auth:           authorization,
		hc:             o.HTTPClient,
		attemptTimeout: o.AttemptTimeout,
		retryMin:       o.RetryMin,
		retryMax:       o.RetryMax,
		onRetry:        o.OnRetry,
		onRecovered:    o.OnRecovered,
		onAcked:        o.OnAcked,
		randN:          rand.Int64N,
		sleep:          sleepCtx,
		now:            time.Now,
	}
	return c, nil
}

// checkHeaderValue refuses values net/http would refuse at every attempt.
func checkHeaderValue(v string) error {
	if v == "" {
		return fmt.Errorf("empty value")
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return fmt.Errorf("control character at byte %d", i)
		}
	}
	return nil
}

// URL returns the full submit URL requests go to.
func (c *Client) URL() string { return c.url }

// CloseIdleConnections closes the Client's idle keep-alive connections. Call
// it at shutdown; the Client stays usable.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Start sends trace's start message, retrying until the platform accepts it
// or ctx is done; then the error wraps ctx.Err() and the last attempt's
// error.
func (c *Client) Start(ctx context.Context, trace string) error {
	b := c.getBuf(len(trace)*6 + 32)
	*b.buf = AppendStartBody(*b.buf, trace)
	if err := c.send(ctx, KindStart, trace, b); err != nil {
		return fmt.Errorf("submitting start of %s: %w", trace, err)
	}
	return nil
}

// Chunk sends chunk number no of trace holding the raw bytes data (encoded
// as base64), retrying until the platform accepts it or ctx is done; then
// the error wraps ctx.Err() and the last attempt's error. data is not
// retained after Chunk returns.
func (c *Client) Chunk(ctx context.Context, trace string, no int64, data []byte) error {
	return c.SendChunk(ctx, c.PrepareChunk(trace, no, data))
}

// PreparedChunk is a chunk's request body encoded ahead of its sending, so
// that a sender encodes chunk n+1 while chunk n is in flight. Send it with
// SendChunk, or Release it.
type PreparedChunk struct {
	trace string
	no    int64
	body  *sharedBody
}

// PrepareChunk encodes chunk number no of trace holding data into a request
// body (a pooled buffer); data is not retained.
func (c *Client) PrepareChunk(trace string, no int64, data []byte) *PreparedChunk {
	b := c.getBuf(ChunkBodyLen(trace, len(data)))
	*b.buf = AppendChunkBody(*b.buf, trace, no, data)
	return &PreparedChunk{trace: trace, no: no, body: b}
}

// Release returns an unsent chunk's buffer. Releasing twice, or after
// SendChunk, does nothing.
func (p *PreparedChunk) Release() {
	if p.body != nil {
		p.body.release()
		p.body = nil
	}
}

// SendChunk is Chunk for a prepared chunk, which it releases.
func (c *Client) SendChunk(ctx context.Context, p *PreparedChunk) error {
	b := p.body
	if b == nil {
		return fmt.Errorf("submitting chunk %d of %s: already sent or released", p.no, p.trace)
	}
	p.body = nil
	if err := c.send(ctx, KindChunk, p.trace, b); err != nil {
		return fmt.Errorf("submitting chunk %d of %s: %w", p.no, p.trace, err)
	}
	return nil
}

// Finished sends trace's finished message, retrying until the platform
// accepts it or ctx is done; then the error wraps ctx.Err() and the last
// attempt's error.
func (c *Client) Finished(ctx context.Context, trace string, f Finish) error {
	b := c.getBuf(len(trace)*6 + len(f.Stderr)*6 + len(f.Reason) + len(f.SHA256) + 160)
	*b.buf = AppendFinishedBody(*b.buf, trace, f)
	if err := c.send(ctx, KindFinished, trace, b); err != nil {
		return fmt.Errorf("submitting finished of %s: %w", trace, err)
	}
	return nil
}
