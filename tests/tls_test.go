package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// TestTLSServesAndReloadsOnSIGHUP runs the real endpoint with
// server.tls-cert / server.tls-key: /heartbeat answers over TLS to a
// client trusting the certificate, plain HTTP gets no answer, TLS 1.1 is
// refused, and after the files are replaced and SIGHUP is sent the next
// handshake on the same listener presents the new certificate. A reload of
// broken files logs an ERROR and keeps the certificate in use.
func TestTLSServesAndReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newSelfSigned(t, "lambda-endpoint test 1"), newSelfSigned(t, "lambda-endpoint test 2")
	first.write(t, certFile, keyFile)

	addr := testsupport.FreeAddr(t)
	e := launchServe(t, addr, fmt.Sprintf("tls-cert = %q\ntls-key = %q\n", certFile, keyFile), nil)
	e.URL = "https://" + addr
	trustFirst := tlsClient(first.Cert)
	pollEndpoint(t, e, 60*time.Second, "GET /heartbeat over TLS", func() bool {
		st, _ := getHeartbeat(trustFirst, e.URL)
		return st == http.StatusOK
	})
	if log := e.log.String(); strings.Contains(log, "replayable") || !strings.Contains(log, "tls=true") {
		t.Errorf("TLS start: want tls=true and no plain-HTTP warning in the log:\n%s", log)
	}

	// Plain HTTP on the TLS port: Go's server answers 400, never the API.
	if st, body := getHeartbeat(http.DefaultClient, "http://"+addr); st == http.StatusOK || strings.Contains(body, "alive") {
		t.Errorf("plain HTTP GET /heartbeat = %d %q, want it refused", st, body)
	}
	// A client that does not trust the certificate fails the handshake.
	if st, _ := getHeartbeat(tlsClient(second.Cert), e.URL); st != 0 {
		t.Errorf("GET with an untrusting client = %d, want a handshake failure", st)
	}
	// TLS 1.1 is refused; 1.2 is enough.
	both := []*x509.Certificate{first.Cert, second.Cert}
	if _, err := presentedCert(addr, both, tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	}
	if got, err := presentedCert(addr, both, tls.VersionTLS12, tls.VersionTLS12); err != nil || !got.Equal(first.Cert) {
		t.Fatalf("TLS 1.2 handshake: %v; want the first certificate", err)
	}

	// Replace both files, then SIGHUP: the same process and listener
	// present the second certificate to the next handshake.
	pid := e.PID()
	second.write(t, certFile, keyFile)
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pollEndpoint(t, e, 20*time.Second, "a handshake presenting the second certificate", func() bool {
		got, err := presentedCert(addr, both, tls.VersionTLS12, 0)
		return err == nil && got.Equal(second.Cert)
	})
	if st, body := getHeartbeat(tlsClient(second.Cert), e.URL); st != http.StatusOK {
		t.Fatalf("GET /heartbeat trusting the second certificate = %d %s", st, body)
	}
	if e.PID() != pid || !processAlive(pid) {
		t.Fatalf("the endpoint restarted or died on SIGHUP")
	}

	// A broken reload: ERROR logged, the second certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pollEndpoint(t, e, 20*time.Second, "the ERROR of the failed reload", func() bool {
		return strings.Contains(e.log.String(), "level=ERROR msg=\"SIGHUP: reloading TLS key pair failed; the previous certificate stays in use\"")
	})
	if got, err := presentedCert(addr, both, tls.VersionTLS12, 0); err != nil || !got.Equal(second.Cert) {
		t.Fatalf("after a failed reload: %v; want the second certificate still", err)
	}
	if st, _ := getHeartbeat(tlsClient(second.Cert), e.URL); st != http.StatusOK {
		t.Fatalf("GET /heartbeat after a failed reload = %d", st)
	}
	if code := e.Stop(); code != 0 {
		t.Fatalf("endpoint exited %d after SIGTERM, want 0", code)
	}
}

// TestTLSPlainHTTPWarning: plain HTTP on a non-loopback address logs a WARN
// about replayable Authorization headers at start; loopback or TLS do not.
func TestTLSPlainHTTPWarning(t *testing.T) {
	pair := newSelfSigned(t, "lambda-endpoint warn test")
	tests := []struct {
		name string
		host string // listen host; the port is a free one
		tls  bool
		warn bool
	}{
		{"plain on 0.0.0.0", "0.0.0.0", false, true},
		{"plain on 127.0.0.1", "127.0.0.1", false, false},
		{"plain on localhost", "localhost", false, false},
		{"TLS on 0.0.0.0", "0.0.0.0", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(testsupport.FreeAddr(t))
			server, scheme, client := "", "http", http.DefaultClient
			if tt.tls {
				dir := t.TempDir()
				certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
				pair.write(t, certFile, keyFile)
				server = fmt.Sprintf("tls-cert = %q\ntls-key = %q\n", certFile, keyFile)
				scheme, client = "https", tlsClient(pair.Cert)
			}
			e := launchServe(t, net.JoinHostPort(tt.host, port), server, nil)
			url := scheme + "://127.0.0.1:" + port
			pollEndpoint(t, e, 60*time.Second, "GET /heartbeat", func() bool {
				st, _ := getHeartbeat(client, url)
				return st == http.StatusOK
			})
			// The warning is logged before the listener serves, so the
			// answer above means it is in the log if it ever will be.
			log := e.log.String()
			warned := strings.Contains(log, "level=WARN") &&
				strings.Contains(log, "the Authorization header is replayable by anyone who can read the traffic; set server.tls-cert and server.tls-key")
			if warned != tt.warn {
				t.Errorf("listen %s (tls %v): warned = %v, want %v; log:\n%s", tt.host, tt.tls, warned, tt.warn, log)
			}
		})
	}
}

// TestTLSConfigRefused: a half-set pair or unreadable files stop serve at
// once with exit code 1 and a message naming the key.
func TestTLSConfigRefused(t *testing.T) {
	dir := t.TempDir()
	good := newSelfSigned(t, "lambda-endpoint refused test")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	good.write(t, certFile, keyFile)
	other := newSelfSigned(t, "other")
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server string
		env    []string
		want   string
	}{
		{"cert without key", fmt.Sprintf("tls-cert = %q\n", certFile), nil, "server.tls-key: missing: server.tls-cert is set"},
		{"key without cert", fmt.Sprintf("tls-key = %q\n", keyFile), nil, "server.tls-cert: missing: server.tls-key is set"},
		{"env empties the key", fmt.Sprintf("tls-cert = %q\ntls-key = %q\n", certFile, keyFile), []string{"LAMBDA_TLS_KEY="}, "server.tls-key: missing"},
		{"missing cert file", fmt.Sprintf("tls-cert = %q\ntls-key = %q\n", filepath.Join(dir, "none.pem"), keyFile), nil,
			"loading TLS key pair (server.tls-cert " + filepath.Join(dir, "none.pem")},
		{"key of another cert", fmt.Sprintf("tls-cert = %q\ntls-key = %q\n", certFile, otherKey), nil, "private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if buildErr != nil {
				t.Fatal(buildErr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, endpointBin, "serve", "--config", serveConfig(t, tt.server))
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
				t.Fatalf("serve: %v, want exit 1 with %q:\n%s", err, tt.want, out)
			}
		})
	}
}

// selfSigned is a certificate that is its own CA, for 127.0.0.1 and
// localhost, with its key.
type selfSigned struct{ testsupport.SelfSigned }

func newSelfSigned(t *testing.T, cn string) selfSigned {
	return selfSigned{testsupport.NewSelfSigned(t, cn)}
}

// write replaces certFile and keyFile, each through a rename so that a
// reader sees the old file or the new one, never half of one.
func (s selfSigned) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, s.CertPEM}, {keyFile, s.KeyPEM}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsClient is an HTTP client that trusts only roots and opens a new
// connection (a new handshake) for every request.
func tlsClient(roots ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		},
	}
}

// getHeartbeat sends an authorized GET /heartbeat to base and returns the
// status (0 when the request failed) and body.
func getHeartbeat(client *http.Client, base string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, base+"/heartbeat", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", authHeader)
	res, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// presentedCert opens one TLS connection to addr trusting roots, with the
// given version bounds (0: crypto/tls's default), and returns the
// certificate the server presented.
func presentedCert(addr string, roots []*x509.Certificate, minVersion, maxVersion uint16) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    &tls.Config{RootCAs: pool, MinVersion: minVersion, MaxVersion: maxVersion},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// launchServe starts `lambda-endpoint serve` on listen with the extra
// [server] lines server, without waiting for it (startEndpoint's readiness
// check speaks plain HTTP to a loopback address, which these tests do not
// always serve). The caller waits with pollEndpoint.
func launchServe(t *testing.T, listen, server string, env []string) *endpoint {
	t.Helper()
	e, cfgPath := newEndpoint(t, endpointOptions{Listen: listen, Server: server})
	e.run(cfgPath, env)
	return e
}

// pollEndpoint checks cond on every tick of a ticker until it holds; it fails
// the test when within passes or the endpoint exits first.
func pollEndpoint(t *testing.T, e *endpoint, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-e.done:
			t.Fatalf("endpoint exited (code %d) while waiting for %s", e.exitCode, what)
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

// serveConfig writes a config whose [server] holds the extra lines server
// and returns its path.
func serveConfig(t *testing.T, server string) string {
	t.Helper()
	_, cfgPath := newEndpoint(t, endpointOptions{Server: server})
	return cfgPath
}
