package platform

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

// tcpPair returns the two ends of a loopback TCP connection, the client end
// dialled through dialBodyConn.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := dialBodyConn(&net.Dialer{})(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TestBodyConnReadFrom: a request body handed over as net/http does (an
// io.LimitedReader over the body) arrives whole or up to the limit, the
// body reader and the limit advance by what was written, and any other
// reader is copied too.
func TestBodyConnReadFrom(t *testing.T) {
	c := &Client{}
	body := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes: above one 32 KiB copy buffer
	tests := []struct {
		name   string
		skip   int64 // bytes read from the body before
		limit  int64 // of the LimitedReader; -1: the body reader itself
		plain  bool  // an io.Reader that is not a body reader
		want   int64
		remain int // body bytes left unread after
	}{
		{name: "whole body", limit: int64(len(body)), want: int64(len(body))},
		{name: "limit below the body", limit: 1000, want: 1000, remain: len(body) - 1000},
		{name: "limit above the body", limit: int64(len(body)) + 5, want: int64(len(body))},
		{name: "partly read before", skip: 4096, limit: int64(len(body)) - 4096, want: int64(len(body)) - 4096},
		{name: "body reader without a limit", limit: -1, want: int64(len(body))},
		{name: "another reader", plain: true, limit: int64(len(body)), want: int64(len(body))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, srv := tcpPair(t)
			rf, ok := cl.(io.ReaderFrom)
			if !ok {
				t.Fatalf("dialled connection %T has no ReadFrom", cl)
			}
			sb := c.getBuf(len(body))
			*sb.buf = append(*sb.buf, body...)
			br := sb.open().(*bodyReader)
			if tt.skip > 0 {
				if _, err := io.CopyN(io.Discard, br, tt.skip); err != nil {
					t.Fatal(err)
				}
			}
			var src io.Reader = br
			var lr *io.LimitedReader
			switch {
			case tt.plain:
				src = &io.LimitedReader{R: strings.NewReader(string(body)), N: tt.limit}
			case tt.limit >= 0:
				lr = &io.LimitedReader{R: br, N: tt.limit}
				src = lr
			}
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(io.LimitReader(srv, tt.want)); got <- b }()
			n, err := rf.ReadFrom(src)
			if err != nil || n != tt.want {
				t.Fatalf("ReadFrom = %d, %v; want %d", n, err, tt.want)
			}
			start := tt.skip
			if b := <-got; !bytes.Equal(b, body[start:start+tt.want]) {
				t.Fatalf("the other end got %d bytes, not the body's %d from %d", len(b), tt.want, start)
			}
			if lr != nil && lr.N != tt.limit-n {
				t.Errorf("limit left %d, want %d", lr.N, tt.limit-n)
			}
			if !tt.plain && br.Len() != tt.remain {
				t.Errorf("body reader has %d bytes left, want %d", br.Len(), tt.remain)
			}
		})
	}
}

// TestBodyConnNoAllocation: writing a body costs no allocation (net/http's
// TCPConn path allocated a 32 KiB copy buffer per request).
func TestBodyConnNoAllocation(t *testing.T) {
	cl, srv := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, srv) }()
	c := &Client{}
	sb := c.getBuf(70000)
	*sb.buf = append(*sb.buf, bytes.Repeat([]byte("x"), 70000)...)
	br := sb.open().(*bodyReader)
	lr := &io.LimitedReader{R: br}
	rf := cl.(io.ReaderFrom)
	allocs := testing.AllocsPerRun(50, func() {
		_, _ = br.Seek(0, io.SeekStart)
		lr.N = 70000
		if _, err := rf.ReadFrom(lr); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per body written, want 0", allocs)
	}
}
