package persistencetest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through addr and returns the answer.
func roundTrip(t *testing.T, c net.Conn, line string) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestProxy(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	if p.URL() != p.Addr() {
		t.Fatalf("URL() = %q for a host:port target, want Addr() %q", p.URL(), p.Addr())
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(t, c, "hello"); err != nil || got != "hello" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	p.Close()
	if _, err := roundTrip(t, c, "cut"); err == nil {
		t.Fatal("a connection survived Close")
	}
	if _, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing a closed proxy = %v, want connection refused", err)
	}
	p.Close() // idempotent

	p.Reopen()
	p.Reopen() // idempotent
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dialing the reopened proxy: %v", err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, "again"); err != nil || got != "again" {
		t.Fatalf("through the reopened proxy: %q, %v", got, err)
	}
}

func TestProxyURL(t *testing.T) {
	for _, tt := range []struct{ target, wantPrefix, wantSuffix string }{
		{"postgres://postgres:pw@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres:pw@127.0.0.1:", "/test?sslmode=disable"},
		{"postgresql://u@localhost/db", "postgresql://u@127.0.0.1:", "/db"},
	} {
		p := NewProxy(t, tt.target)
		if got := p.URL(); !strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, tt.wantSuffix) || !strings.Contains(got, p.Addr()) {
			t.Errorf("NewProxy(%q).URL() = %q, want %s<port>%s", tt.target, got, tt.wantPrefix, tt.wantSuffix)
		}
		if tt.target == "postgresql://u@localhost/db" && p.target != "localhost:5432" {
			t.Errorf("target of %q = %q, want the default port", tt.target, p.target)
		}
	}
}
