package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:3000", true},
		{"127.0.0.1:0", true},
		{"127.1.2.3:3000", true},
		{"[::1]:3000", true},
		{"[::ffff:127.0.0.1]:3000", true},
		{"[::1%lo]:3000", true},
		{"localhost:3000", true},
		{"LocalHost:3000", true},
		{"localhost.:3000", true},
		{"0.0.0.0:3000", false},
		{"[::]:3000", false},
		{":3000", false},
		{"192.0.2.10:3000", false},
		{"10.0.0.1:3000", false},
		{"[2001:db8::1]:3000", false},
		{"[fe80::1%eth0]:3000", false},
		{"[::ffff:192.0.2.10]:3000", false},
		{"example.com:3000", false},
		{"localhost.example.com:3000", false},
		{"my-localhost:3000", false},
		{"127.0.0.1", false}, // not host:port
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestWarnPlainHTTP(t *testing.T) {
	tests := []struct {
		listen, bound string
		warn          bool
	}{
		{"127.0.0.1:3000", "127.0.0.1:3000", false},
		{"[::1]:3000", "[::1]:3000", false},
		{"localhost:3000", "127.0.0.1:3000", false},
		{"0.0.0.0:3000", "0.0.0.0:3000", true},
		{":3000", "[::]:3000", true},
		{"[::]:3000", "[::]:3000", true},
		{"192.0.2.10:3000", "192.0.2.10:3000", true},
		{"host.example:3000", "192.0.2.10:3000", true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		warnPlainHTTP(slog.New(slog.NewTextHandler(&buf, nil)), tt.listen, tt.bound)
		out := buf.String()
		if !tt.warn {
			if out != "" {
				t.Errorf("listen %s (bound %s): logged %q, want nothing", tt.listen, tt.bound, out)
			}
			continue
		}
		for _, want := range []string{"level=WARN", "Authorization header is replayable by anyone who can read the traffic",
			"server.tls-cert and server.tls-key", "listen=" + tt.listen, "addr=" + tt.bound} {
			if !strings.Contains(out, want) {
				t.Errorf("listen %s (bound %s): log %q lacks %q", tt.listen, tt.bound, out, want)
			}
		}
	}
}

// testPair is a self-signed certificate and its key, as PEM.
type testPair = testsupport.SelfSigned

func newTestPair(t *testing.T, cn string) testPair { return testsupport.NewSelfSigned(t, cn) }

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// presented is the serial of the certificate the key pair hands out now.
func presented(t *testing.T, k *keyPair) string {
	t.Helper()
	c, err := k.getCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("getCertificate = %v, %v", c, err)
	}
	return c.Leaf.SerialNumber.String()
}

func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newTestPair(t, "first"), newTestPair(t, "second")
	writeFile(t, certFile, first.CertPEM)
	writeFile(t, keyFile, first.KeyPEM)
	k, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := presented(t, k); got != first.Cert.SerialNumber.String() {
		t.Fatalf("presents %s, want the first certificate", got)
	}
	writeFile(t, certFile, second.CertPEM)
	writeFile(t, keyFile, second.KeyPEM)
	if _, err := k.reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	want := second.Cert.SerialNumber.String()
	if got := presented(t, k); got != want {
		t.Fatalf("after reload presents %s, want the second certificate %s", got, want)
	}

	// Each broken state is refused and leaves the second pair in use.
	broken := []struct {
		name      string
		cert, key []byte // nil: remove the file
		wantErr   string
	}{
		{"cert not PEM", []byte("not a certificate"), second.KeyPEM, "failed to find any PEM data in certificate input"},
		{"key not PEM", second.CertPEM, []byte("not a key"), "failed to find any PEM data in key input"},
		{"key of another cert", first.CertPEM, second.KeyPEM, "private key does not match public key"},
		{"cert missing", nil, second.KeyPEM, "no such file or directory"},
		{"empty files", []byte{}, []byte{}, "failed to find any PEM data"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			for _, f := range []struct {
				path string
				data []byte
			}{{certFile, b.cert}, {keyFile, b.key}} {
				if f.data == nil {
					os.Remove(f.path)
				} else {
					writeFile(t, f.path, f.data)
				}
			}
			_, err := k.reload()
			if err == nil || !strings.Contains(err.Error(), b.wantErr) || !strings.Contains(err.Error(), "server.tls-cert "+certFile) {
				t.Fatalf("reload error = %v, want one naming server.tls-cert and containing %q", err, b.wantErr)
			}
			if got := presented(t, k); got != want {
				t.Fatalf("after a failed reload presents %s, want the previous %s", got, want)
			}
		})
	}
}

func TestLoadKeyPairRefusesAtStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadKeyPair(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key")); err == nil ||
		!strings.Contains(err.Error(), "loading TLS key pair") {
		t.Fatalf("loadKeyPair of missing files: %v", err)
	}
}

// TestKeyPairHandshake serves TLS on one listener across a reload: the
// new connection gets the new certificate, TLS 1.1 is refused.
func TestKeyPairHandshake(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newTestPair(t, "first"), newTestPair(t, "second")
	writeFile(t, certFile, first.CertPEM)
	writeFile(t, keyFile, first.KeyPEM)
	k, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", k.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(first.Cert)
	roots.AddCert(second.Cert)
	dial := func(cfg *tls.Config) (*x509.Certificate, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], nil
	}

	if _, err := dial(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}
	got, err := dial(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	if err != nil || !got.Equal(first.Cert) {
		t.Fatalf("TLS 1.2 handshake: %v, %v; want the first certificate", got, err)
	}
	writeFile(t, certFile, second.CertPEM)
	writeFile(t, keyFile, second.KeyPEM)
	if _, err := k.reload(); err != nil {
		t.Fatal(err)
	}
	got, err = dial(&tls.Config{RootCAs: roots})
	if err != nil || !got.Equal(second.Cert) {
		t.Fatalf("handshake after reload: %v, %v; want the second certificate", got, err)
	}
}

// TestReloadOnHangup drives the SIGHUP loop through its channel: each
// signal is one reload, logged INFO or ERROR, and cancelling stops it.
func TestReloadOnHangup(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newTestPair(t, "first"), newTestPair(t, "second")
	writeFile(t, certFile, first.CertPEM)
	writeFile(t, keyFile, first.KeyPEM)
	k, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		pair    *keyPair
		prepare func()
		want    []string
		serial  string // the certificate presented after the signal
	}{
		{"good pair", k, func() {
			writeFile(t, certFile, second.CertPEM)
			writeFile(t, keyFile, second.KeyPEM)
		}, []string{"level=INFO", "SIGHUP: TLS key pair reloaded", `subject="CN=second"`, "not_after="}, second.Cert.SerialNumber.String()},
		{"broken pair", k, func() {
			writeFile(t, certFile, []byte("garbage"))
		}, []string{"level=ERROR", "reloading TLS key pair failed; the previous certificate stays in use", "server.tls-cert"}, second.Cert.SerialNumber.String()},
		{"no TLS", nil, func() {}, []string{"level=INFO", "nothing to reload"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			var buf bytes.Buffer
			hup := make(chan os.Signal) // unbuffered: the second send waits for the first reload
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				reloadOnHangup(ctx, hup, tt.pair, slog.New(slog.NewTextHandler(&buf, nil)))
			}()
			hup <- syscall.SIGHUP
			hup <- syscall.SIGHUP
			cancel()
			<-done
			out := buf.String()
			if n := strings.Count(out, "\n"); n != 2 {
				t.Fatalf("log %q: %d lines, want one per signal (2)", out, n)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("log %q lacks %q", out, w)
				}
			}
			if tt.serial != "" {
				if got := presented(t, tt.pair); got != tt.serial {
					t.Errorf("presents %s, want %s", got, tt.serial)
				}
			}
		})
	}
}
