package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// keyPair is the REST API's TLS certificate and key, read from two PEM
// files at start and again on every reload. Handshakes read the current
// pair through GetCertificate; a reload swaps it atomically, so the
// listener stays open and connections already established keep the pair
// they were made with.
type keyPair struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// loadKeyPair reads certFile and keyFile; an error here stops the start.
func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// reload reads both files again and, when they make a valid pair, makes it
// the one new handshakes present. On error the previous pair stays.
func (k *keyPair) reload() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS key pair (server.tls-cert %s, server.tls-key %s): %w", k.certFile, k.keyFile, err)
	}
	if c.Leaf == nil { // LoadX509KeyPair fills it in unless GODEBUG=x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing server.tls-cert %s: %w", k.certFile, err)
		}
	}
	k.cert.Store(&c)
	return &c, nil
}

// getCertificate is tls.Config.GetCertificate: the current pair.
func (k *keyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cert.Load(), nil
}

// tlsConfig is the REST API's TLS configuration: TLS 1.2 or later, the
// certificate from k.
func (k *keyPair) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: k.getCertificate,
	}
}

// certAttrs describes a certificate for the log.
func certAttrs(c *tls.Certificate) []any {
	if c == nil || c.Leaf == nil {
		return nil
	}
	return []any{"subject", c.Leaf.Subject.String(), "serial", c.Leaf.SerialNumber.String(),
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339)}
}

// reloadOnHangup runs until ctx is done, handling each signal from hup
// (SIGHUP): with TLS it reloads the key pair (INFO on success; ERROR on
// failure, the old pair staying in use), without TLS it only says there is
// nothing to reload. It is the one SIGHUP handler of serve. It recovers its
// own panics: a reload must never take the endpoint down.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, pair *keyPair, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			handleHangup(pair, logger)
		}
	}
}

func handleHangup(pair *keyPair, logger *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("reloading TLS key pair: panic; the previous certificate stays in use", "panic", fmt.Sprint(p))
		}
	}()
	if pair == nil {
		logger.Info("SIGHUP received: nothing to reload (server.tls-cert and server.tls-key are not set)")
		return
	}
	c, err := pair.reload()
	if err != nil {
		logger.Error("SIGHUP: reloading TLS key pair failed; the previous certificate stays in use", "err", err)
		return
	}
	logger.Info("SIGHUP: TLS key pair reloaded", certAttrs(c)...)
}

// isLoopback reports whether the listen address addr (host:port, as
// configured or as bound) reaches only this host: a loopback IP
// (127.0.0.0/8, ::1, ::ffff:127.x.x.x) or the name localhost. An empty
// host, an unspecified address (0.0.0.0, ::), any other IP or host name,
// and an address that is not host:port are not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false // a host name other than localhost, or ""
	}
	return ip.Unmap().IsLoopback()
}

// warnPlainHTTP logs, when the REST API serves plain HTTP on an address
// others can reach, that its Authorization headers can be replayed. bound
// is the address actually listened on (a host name is resolved by then).
func warnPlainHTTP(logger *slog.Logger, listen, bound string) {
	if isLoopback(bound) {
		return
	}
	logger.Warn("the REST API serves plain HTTP on a non-loopback address: the Authorization header "+
		"is replayable by anyone who can read the traffic; set server.tls-cert and server.tls-key to serve TLS",
		"listen", listen, "addr", bound)
}
