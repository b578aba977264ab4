package platform

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Default option values, used where an Options field is zero.
const (
	DefaultAttemptTimeout = 30 * time.Second
	DefaultRetryMin       = time.Second
	DefaultRetryMax       = 30 * time.Second
)

// The kinds of message a Client sends, as passed to Options.OnRetry.
const (
	KindStart    = "start"
	KindChunk    = "chunk"
	KindFinished = "finished"
)

// Options tunes a Client. The zero value is ready to use: every zero field
// takes its default.
type Options struct {
	// HTTPClient sends the requests. Default: a client of the Client's own
	// with a Transport tuned for many concurrent traces (keep-alive, up to
	// 128 idle connections to the platform, dial and TLS timeouts, proxy
	// from the environment) that follows only 307/308 redirects: a 301,
	// 302 or 303 would turn the PUT into a body-less GET whose 2xx would
	// pass for a delivery, so it is treated as a failed attempt instead.
	// A given client's Timeout, if any, bounds each attempt in addition to
	// AttemptTimeout; give it the same redirect policy.
	HTTPClient *http.Client
	// AttemptTimeout bounds one PUT attempt, from sending the request to
	// reading the answer. Default 30s.
	AttemptTimeout time.Duration
	// RetryMin is the backoff cap of the first retry; it doubles with every
	// further attempt. Default 1s.
	RetryMin time.Duration
	// RetryMax caps every wait between attempts, including one asked for by
	// Retry-After. Default 30s.
	RetryMax time.Duration
	// OnRetry, when set, is called after each failed attempt, before the
	// wait: kind is KindStart, KindChunk or KindFinished, attempt counts
	// from 1, err is why the attempt failed (a *StatusError for a non-2xx
	// answer) and wait is how long the Client now sleeps. It runs on the
	// sending goroutine and must not block.
	OnRetry func(kind string, trace string, attempt int, err error, wait time.Duration)
	// OnRecovered, when set, is called when a message is acknowledged
	// after failed attempts (attempts counts them all, the last one
	// included). It runs on the sending goroutine and must not block.
	OnRecovered func(kind string, trace string, attempts int)
	// OnAcked, when set, is called when the platform acknowledges a
	// message: took is how long the acknowledged attempt took, from
	// sending the request to the 2xx answer (the retries before it not
	// counted). It runs on the sending goroutine and must not block.
	OnAcked func(kind string, trace string, took time.Duration)
}

// withDefaults validates o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	if o.AttemptTimeout < 0 || o.RetryMin < 0 || o.RetryMax < 0 {
		return o, fmt.Errorf("checking options: negative duration: %w", ErrInvalid)
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.RetryMin == 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMin > o.RetryMax {
		return o, fmt.Errorf("checking options: RetryMin %v above RetryMax %v: %w", o.RetryMin, o.RetryMax, ErrInvalid)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: newTransport(), CheckRedirect: checkRedirect}
	}
	return o, nil
}

// checkRedirect follows redirects that keep the PUT and its body (307,
// 308), at most 10, and stops at any other, whose 3xx answer then counts
// as a failed attempt.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.Method != http.MethodPut || len(via) >= 10 {
		return http.ErrUseLastResponse
	}
	return nil
}

// newTransport returns the default Transport: keep-alive connections
// reused across traces, enough idle connections per host for many traces
// sending at once, bounded dial and handshake times, and plain TCP
// connections that write a chunk's body in one piece (bodyConn).
func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialBodyConn(dialer),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
