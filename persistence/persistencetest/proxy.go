package persistencetest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"
)

// reopenPatience bounds how long Reopen retries binding the old address.
const reopenPatience = 5 * time.Second

// Proxy is a TCP forwarder on 127.0.0.1 that a test can take down and bring
// back on the same port, to play a database outage for code that keeps a
// connection pool: Close makes the database look gone (new connections are
// refused, open ones are cut), Reopen makes it reachable again at the same
// address. Its goroutines stop when the test ends.
type Proxy struct {
	t      testing.TB
	target string // host:port forwarded to
	addr   string // 127.0.0.1:port listened on, fixed for the Proxy's life
	url    string

	mu    sync.Mutex
	ln    net.Listener          // nil while down
	conns map[net.Conn]struct{} // both ends of every forwarded connection
	wg    sync.WaitGroup        // accept loops and forwarders
}

// NewProxy starts a proxy to target, which is either a database URL
// (postgres://user@host:port/db?...; the port defaults to 5432) or a bare
// host:port. It fails t if it cannot listen.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, conns: make(map[net.Conn]struct{})}
	u, err := url.Parse(target)
	if err == nil && u.Scheme != "" && u.Host != "" {
		p.target = u.Host
		if u.Port() == "" {
			p.target = net.JoinHostPort(u.Hostname(), "5432")
		}
	} else {
		if _, _, err := net.SplitHostPort(target); err != nil {
			t.Fatalf("proxy target %q is neither a URL with a host nor host:port", target)
		}
		p.target = target
		u = nil
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting proxy: %v", err)
	}
	p.addr = ln.Addr().String()
	if u != nil {
		u.Host = p.addr
		p.url = u.String()
	} else {
		p.url = p.addr
	}
	p.start(ln)
	t.Cleanup(func() {
		p.Close()
		p.wg.Wait()
	})
	return p
}

// URL returns the target URL with its host replaced by the proxy's
// address (or the proxy's host:port when the target was one).
func (p *Proxy) URL() string { return p.url }

// Addr returns the proxy's 127.0.0.1:port; it stays the same across Reopen.
func (p *Proxy) Addr() string { return p.addr }

// Close takes the proxy down: it stops listening, so new connections are
// refused, and cuts every forwarded connection. It returns after the
// forwarders have stopped. Closing a closed proxy does nothing.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Reopen brings a closed proxy back on the same address. It fails t if the
// port cannot be bound again. Reopening an open proxy does nothing.
func (p *Proxy) Reopen() {
	p.t.Helper()
	p.mu.Lock()
	open := p.ln != nil
	p.mu.Unlock()
	if open {
		return
	}
	deadline := time.Now().Add(reopenPatience)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.start(ln)
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			p.t.Fatalf("reopening proxy on %s: %v", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start serves ln until it is closed.
func (p *Proxy) start(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Close
			}
			if !p.track(ln, c) {
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(ln, c)
			}()
		}
	}()
}

// track registers c unless the listener it came from has been closed
// meanwhile, in which case c is closed.
func (p *Proxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// forward pipes client to the target in both directions until either side
// ends, then closes both.
func (p *Proxy) forward(ln net.Listener, client net.Conn) {
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(ln, server) {
		return
	}
	defer p.untrack(server)

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
}

// untrack closes c and forgets it.
func (p *Proxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
