package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeConfig writes a minimal 0600 config whose server.listen is listen,
// with more [server] lines, and returns its path.
func writeConfig(t *testing.T, listen string, server ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lambda.toml")
	cfg := fmt.Sprintf("[server]\nlisten = %q\n"+strings.Join(append(server, ""), "\n")+"\n[lambda]\nendpoint-uuid = \"4633d686-f75d-4d1f-8415-02ce37d9e5f8\"\nsecret = \"abc123456\"\nplatform-url = \"http://127.0.0.1:8080\"\n", listen)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs "lambda-endpoint GROUP ARGS..." with getenv and returns the
// error and the output (stdout then stderr).
func runCLI(group string, args []string, getenv func(string) (string, bool)) (error, string, string) {
	var out, errOut bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errOut, Getenv: getenv}
	var err error
	if group == "templates" {
		err = Templates(context.Background(), args, env)
	} else {
		err = Traces(context.Background(), args, env)
	}
	return err, out.String(), errOut.String()
}

func noEnv(string) (string, bool) { return "", false }

// writePEM writes certificates as a PEM file and returns its path.
func writePEM(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCA is a self-signed certificate that signed nothing of the test
// servers.
func otherCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// templatesAPI answers GET /traces with templates 5 (STAP) and 6 (BPF),
// and POST /trace/start and /trace/remove with 404 "no TYPE template ID"
// for any (type, id) but (BPF, 6); it requires an Authorization header.
func templatesAPI(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "4633d686-f75d-4d1f-8415-02ce37d9e5f8$argon2") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unauthorized"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /traces":
			io.WriteString(w, `[{"traceNo":5,"info":{"process":"/bin/bash","functions":["xmalloc"],"environment":[],"value":[],"options":[],"traceType":"STAP"}},`+
				`{"traceNo":6,"info":{"process":"/bin/bash","functions":["xfree"],"environment":[],"value":[],"options":[],"traceType":"BPF"}}]`)
		case "POST /trace/start", "POST /trace/remove":
			var req struct {
				TraceT, RemoveType string
				TraceID, RemoveID  int64
			}
			json.NewDecoder(r.Body).Decode(&req)
			typ, id := req.TraceT+req.RemoveType, req.TraceID+req.RemoveID
			if typ == "BPF" && id == 6 {
				io.WriteString(w, `{"thread":1,"filePath":"/tmp/x.trace"}`)
				return
			}
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"no %s template %d"}`, typ, id)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

// TestTypeHint: a template addressed with the wrong --type is named with
// the type it has.
func TestTypeHint(t *testing.T) {
	srv := httptest.NewServer(templatesAPI(t))
	defer srv.Close()
	cfg := writeConfig(t, "127.0.0.1:1")
	for _, c := range []struct {
		group string
		args  []string
		want  string // "" : no hint
		err   string
	}{
		{"traces", []string{"start", "--lasting", "10", "5"}, "no BPF template 5 (template 5 is a STAP template: use --type STAP)", ""},
		{"traces", []string{"start", "--lasting", "10", "--type", "stap", "6"}, "no STAP template 6 (template 6 is a BPF template: use --type BPF)", ""},
		{"traces", []string{"start", "--lasting", "10", "9"}, "", "no BPF template 9"},
		{"templates", []string{"rm", "5"}, "no BPF template 5 (template 5 is a STAP template: use --type STAP)", ""},
		{"templates", []string{"rm", "--type", "STAP", "6"}, "no STAP template 6 (template 6 is a BPF template: use --type BPF)", ""},
	} {
		t.Run(strings.Join(append([]string{c.group}, c.args...), " "), func(t *testing.T) {
			err, _, _ := runCLI(c.group, append(c.args, "--config", cfg, "--endpoint", srv.URL), noEnv)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				t.Fatalf("error %v; want a 404", err)
			}
			if c.want != "" && !strings.HasSuffix(err.Error(), c.want) {
				t.Errorf("error %q; want it to end in %q", err, c.want)
			}
			if c.want == "" && (!strings.HasSuffix(err.Error(), c.err) || strings.Contains(err.Error(), "--type")) {
				t.Errorf("error %q; want it to end in %q, with no hint", err, c.err)
			}
		})
	}
}

// TestConnectionRefused: a refused connection says where the URL came
// from.
func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := writeConfig(t, addr)
	listenEnv := func(k string) (string, bool) {
		if k == "LAMBDA_LISTEN" {
			return addr, true
		}
		return "", false
	}
	const hint = ": connection refused: is `lambda-endpoint serve` running there? "
	for _, c := range []struct {
		name   string
		args   []string
		getenv func(string) (string, bool)
		want   string
	}{
		{"from the config", []string{"ls"}, noEnv, "connecting to http://" + addr + hint + "(server.listen in " + cfg + ")"},
		{"from LAMBDA_LISTEN", []string{"ls"}, listenEnv, "connecting to http://" + addr + hint + "(LAMBDA_LISTEN)"},
		{"from --endpoint", []string{"ls", "--endpoint", "http://" + addr}, noEnv, "connecting to http://" + addr + hint + "(--endpoint)"},
		{"a kill", []string{"kill", "/tmp/x.trace"}, noEnv, "connecting to http://" + addr + hint + "(server.listen in " + cfg + ")"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, _, _ := runCLI("traces", append(c.args, "--config", cfg), c.getenv)
			var ce *ConnectError
			if !errors.As(err, &ce) || !errors.Is(err, syscall.ECONNREFUSED) || err.Error() != c.want {
				t.Errorf("error %v\nwant %s", err, c.want)
			}
		})
	}
}

// TestHTTPS: an https:// endpoint with a self-signed certificate works
// with --ca, and every way of getting it wrong says what to do.
func TestHTTPS(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(templatesAPI(t))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plain := httptest.NewServer(templatesAPI(t))
	defer plain.Close()
	cfg := writeConfig(t, "127.0.0.1:1")
	ca := writePEM(t, tlsSrv.Certificate())
	wrongCA := writePEM(t, otherCA(t))
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	_, port, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	for _, c := range []struct {
		name     string
		endpoint string
		ca       string
		want     string // error text, "" for success
		usage    bool   // the error is a usage error
	}{
		{"--ca trusts the self-signed certificate", tlsSrv.URL, ca, "", false},
		{"no --ca", tlsSrv.URL, "", "connecting to " + tlsSrv.URL + ": the server's certificate is signed by an unknown authority: give the CA certificate that signed the server's with --ca FILE", false},
		{"--ca of another CA", tlsSrv.URL, wrongCA, "connecting to " + tlsSrv.URL + ": the server's certificate is signed by an unknown authority: --ca " + wrongCA + " does not hold the CA certificate that signed the server's", false},
		{"a name the certificate lacks", "https://localhost:" + port, ca, "connecting to https://localhost:" + port + ": the server's certificate is not valid for localhost: use a host name or address the certificate holds", false},
		{"http:// to the TLS server", strings.Replace(tlsSrv.URL, "https://", "http://", 1), "", "connecting to " + strings.Replace(tlsSrv.URL, "https://", "http://", 1) + ": the endpoint speaks HTTPS: use an https:// URL (--endpoint https://HOST:PORT, with --ca FILE for a self-signed certificate)", false},
		{"https:// to a plain server", strings.Replace(plain.URL, "http://", "https://", 1), ca, "connecting to " + strings.Replace(plain.URL, "http://", "https://", 1) + ": the endpoint speaks plain HTTP: use an http:// URL", false},
		{"--ca that holds no certificate", tlsSrv.URL, notPEM, "reading --ca " + notPEM + ": no PEM certificate in it", false},
		{"--ca missing", tlsSrv.URL, notPEM + ".missing", "reading --ca: open " + notPEM + ".missing: no such file or directory", false},
		{"--ca with http://", plain.URL, ca, "--ca is for an https:// endpoint, not " + plain.URL, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"ls", "--config", cfg, "--endpoint", c.endpoint}
			if c.ca != "" {
				args = append(args, "--ca", c.ca)
			}
			err, out, _ := runCLI("templates", args, noEnv)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("templates ls: %v", err)
			case c.want == "":
				if !strings.Contains(out, "5   STAP  /bin/bash") {
					t.Errorf("templates ls printed:\n%s", out)
				}
			case err == nil || err.Error() != c.want || errors.Is(err, ErrUsage) != c.usage:
				t.Errorf("error %v\nwant %s (usage error: %v)", err, c.want, c.usage)
			}
		})
	}
}

// TestHTTPSFromConfig: without --endpoint, a config with server.tls-cert
// and server.tls-key names an https:// endpoint whose certificate is
// trusted; --ca replaces that trust.
func TestHTTPSFromConfig(t *testing.T) {
	srv := httptest.NewUnstartedServer(templatesAPI(t))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	cert, wrong := writePEM(t, srv.Certificate()), writePEM(t, otherCA(t))
	tlsLines := func(certFile string) []string {
		return []string{fmt.Sprintf("tls-cert = %q", certFile), `tls-key = "/nonexistent/key.pem"`} // the CLI never reads the key
	}
	for _, c := range []struct {
		name string
		cfg  string
		args []string
		want string // error, "" for success
	}{
		{"the server's certificate", writeConfig(t, addr, tlsLines(cert)...), nil, ""},
		{"another certificate", writeConfig(t, addr, tlsLines(wrong)...), nil, "connecting to https://" + addr +
			": the server's certificate is signed by an unknown authority: server.tls-cert " + wrong + " does not hold the CA certificate that signed the server's: give it with --ca FILE"},
		{"another certificate, --ca", writeConfig(t, addr, tlsLines(wrong)...), []string{"--ca", cert}, ""},
		{"no TLS in the config", writeConfig(t, addr), nil, "connecting to http://" + addr +
			": the endpoint speaks HTTPS: use an https:// URL (--endpoint https://HOST:PORT, with --ca FILE for a self-signed certificate)"},
		{"an unreadable server.tls-cert", writeConfig(t, addr, tlsLines("/nonexistent/cert.pem")...), nil,
			"reading server.tls-cert: open /nonexistent/cert.pem: no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, out, _ := runCLI("templates", append([]string{"ls", "--config", c.cfg}, c.args...), noEnv)
			switch {
			case c.want == "" && (err != nil || !strings.Contains(out, "6   BPF   /bin/bash")):
				t.Errorf("templates ls: %v\n%s", err, out)
			case c.want != "" && (err == nil || err.Error() != c.want):
				t.Errorf("error %v\nwant %s", err, c.want)
			}
		})
	}
}

// TestKillNothingRunning: the Lambda-Trace-Found header decides; an
// endpoint that does not send it is believed.
func TestKillNothingRunning(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ KillPath string }
		json.NewDecoder(r.Body).Decode(&req)
		switch req.KillPath {
		case "/tmp/running.trace":
			w.Header().Set(traceFoundHeader, "true")
		case "/tmp/gone.trace", "/tmp/gone2.trace":
			w.Header().Set(traceFoundHeader, "false")
		}
		io.WriteString(w, "Killed")
	}))
	defer srv.Close()
	cfg := writeConfig(t, "127.0.0.1:1")
	for _, c := range []struct {
		paths   []string
		out     string
		wantErr string
	}{
		{[]string{"/tmp/running.trace"}, "killed /tmp/running.trace\n", ""},
		{[]string{"/tmp/old-endpoint.trace"}, "killed /tmp/old-endpoint.trace\n", ""},
		{[]string{"/tmp/gone.trace"}, "", "nothing running at /tmp/gone.trace"},
		{[]string{"/tmp/gone.trace", "/tmp/running.trace", "/tmp/gone2.trace"}, "killed /tmp/running.trace\n", "nothing running at /tmp/gone.trace, /tmp/gone2.trace"},
	} {
		err, out, _ := runCLI("traces", append([]string{"kill", "--config", cfg, "--endpoint", srv.URL}, c.paths...), noEnv)
		if out != c.out || (c.wantErr == "") != (err == nil) || (err != nil && err.Error() != c.wantErr) {
			t.Errorf("kill %q: %q, %v; want %q, %q", c.paths, out, err, c.out, c.wantErr)
		}
	}
}

// TestDialable: the CLI reaches a wildcard listen address at localhost.
func TestDialable(t *testing.T) {
	for _, c := range []struct{ listen, want string }{
		{"127.0.0.1:3000", "127.0.0.1:3000"},
		{"0.0.0.0:3000", "localhost:3000"},
		{":3000", "localhost:3000"},
		{"[::]:3000", "localhost:3000"},
		{"[::1]:3000", "[::1]:3000"},
		{"host.example:443", "host.example:443"},
		{"not an address", "not an address"},
	} {
		if got := dialable(c.listen); got != c.want {
			t.Errorf("dialable(%q) = %q, want %q", c.listen, got, c.want)
		}
	}
}
