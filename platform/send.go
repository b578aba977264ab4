package platform

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxPooledBuf is the largest body buffer kept for reuse.
const maxPooledBuf = 8 << 20

// maxDrain is how much of an answer body is read so its connection can be
// reused; a longer answer costs the connection.
const maxDrain = 64 << 10

// sharedBody is one encoded request body, shared by every attempt to send
// it. The buffer goes back to the pool only when the sender and every
// request body handed to net/http have released it: the transport may
// still be reading a body after Do returns.
type sharedBody struct {
	c    *Client
	buf  *[]byte
	refs atomic.Int32
}

// getBuf returns a sharedBody with an empty buffer of at least size bytes
// capacity, holding one reference for the sender.
func (c *Client) getBuf(size int) *sharedBody {
	b, _ := c.bufs.Get().(*[]byte)
	if b == nil || cap(*b) < size {
		nb := make([]byte, 0, size)
		b = &nb
	}
	s := &sharedBody{c: c, buf: b}
	s.refs.Store(1)
	return s
}

// open returns a new reader over the body, holding a reference.
func (s *sharedBody) open() io.ReadCloser {
	s.refs.Add(1)
	return &bodyReader{Reader: bytes.NewReader(*s.buf), s: s}
}

// release drops a reference; the last one returns the buffer to the pool.
func (s *sharedBody) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	if cap(*s.buf) <= maxPooledBuf {
		*s.buf = (*s.buf)[:0]
		s.c.bufs.Put(s.buf)
	}
}

// bodyReader is a request body; closing it releases its reference once.
type bodyReader struct {
	*bytes.Reader
	once sync.Once
	s    *sharedBody
}

// Close implements io.Closer.
func (r *bodyReader) Close() error {
	r.once.Do(r.s.release)
	return nil
}

// send delivers body, retrying until a 2xx answer or ctx is done, and
// releases the sender's reference to body.
func (c *Client) send(ctx context.Context, kind, trace string, body *sharedBody) error {
	defer body.release()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		began := c.now()
		retryAfter, err := c.attempt(ctx, body)
		if err == nil {
			if c.onAcked != nil {
				c.onAcked(kind, trace, c.now().Sub(began))
			}
			if attempt > 1 && c.onRecovered != nil {
				c.onRecovered(kind, trace, attempt)
			}
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w; last attempt: %w", cerr, err)
		}
		wait := c.wait(attempt, retryAfter)
		if c.onRetry != nil {
			c.onRetry(kind, trace, attempt, err, wait)
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w; last attempt: %w", serr, err)
		}
	}
}

// attempt sends body once. On failure it returns the wait a Retry-After
// header on a 429 or 503 asked for (-1 if none) and the error.
func (c *Client) attempt(ctx context.Context, body *sharedBody) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPut, c.url, nil)
	if err != nil {
		return -1, fmt.Errorf("building request: %w", err)
	}
	req.Body = body.open()
	req.GetBody = func() (io.ReadCloser, error) { return body.open(), nil }
	req.ContentLength = int64(len(*body.buf))
	req.Header = http.Header{
		"Content-Type":  {"application/json"},
		"Authorization": {c.auth},
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return -1, fmt.Errorf("sending request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return 0, nil
	}
	head := make([]byte, 256)
	n, _ := io.ReadFull(resp.Body, head)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	retryAfter := time.Duration(-1)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			retryAfter = d
		}
	}
	return retryAfter, &StatusError{StatusCode: resp.StatusCode, Body: printable(head[:n])}
}

// printable returns b as a string with non-printable bytes quoted away, for
// error messages.
func printable(b []byte) string {
	s := strconv.Quote(string(bytes.TrimSpace(b)))
	return s[1 : len(s)-1]
}
