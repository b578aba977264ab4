package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestServerTLSKeys covers server.tls-cert and server.tls-key: both or
// neither, from the file or the environment, and an error that names the
// missing one.
func TestServerTLSKeys(t *testing.T) {
	tests := []struct {
		name    string
		file    string            // [server] lines
		env     map[string]string // overrides
		wantTLS bool
		wantErr string // "" = loads; else the single problem's message
	}{
		{name: "neither: plain HTTP"},
		{name: "both in the file", file: "tls-cert = \"/etc/le/cert.pem\"\ntls-key = \"/etc/le/key.pem\"", wantTLS: true},
		{name: "relative paths", file: "tls-cert = \"tls/cert.pem\"\ntls-key = \"tls/key.pem\"", wantTLS: true},
		{name: "both from the environment", env: map[string]string{"LAMBDA_TLS_CERT": "/c.pem", "LAMBDA_TLS_KEY": "/k.pem"}, wantTLS: true},
		{name: "file cert, env key", file: `tls-cert = "/c.pem"`, env: map[string]string{"LAMBDA_TLS_KEY": "/k.pem"}, wantTLS: true},
		{name: "both emptied by the environment", file: "tls-cert = \"/c.pem\"\ntls-key = \"/k.pem\"",
			env: map[string]string{"LAMBDA_TLS_CERT": "", "LAMBDA_TLS_KEY": ""}},
		{name: "cert without key", file: `tls-cert = "/etc/le/cert.pem"`,
			wantErr: "server.tls-key: missing: server.tls-cert is set, and TLS needs both (or neither, for plain HTTP)"},
		{name: "key without cert", file: `tls-key = "/etc/le/key.pem"`,
			wantErr: "server.tls-cert: missing: server.tls-key is set, and TLS needs both (or neither, for plain HTTP)"},
		{name: "key emptied by the environment", file: "tls-cert = \"/c.pem\"\ntls-key = \"/k.pem\"",
			env: map[string]string{"LAMBDA_TLS_KEY": ""}, wantErr: "server.tls-key: missing: server.tls-cert is set"},
		{name: "cert only from the environment", env: map[string]string{"LAMBDA_TLS_CERT": "/c.pem"},
			wantErr: "server.tls-key: missing"},
		{name: "NUL in the cert path", env: map[string]string{"LAMBDA_TLS_CERT": "/c\x00.pem", "LAMBDA_TLS_KEY": "/k.pem"},
			wantErr: "server.tls-cert: must not contain NUL"},
		{name: "NUL in the key path", env: map[string]string{"LAMBDA_TLS_CERT": "/c.pem", "LAMBDA_TLS_KEY": "/k\x00.pem"},
			wantErr: "server.tls-key: must not contain NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, "[server]\n"+tt.file+"\n"+requiredTOML, 0o600)
			got, err := Load(path, env(tt.env))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got.Server.TLS() != tt.wantTLS {
					t.Fatalf("TLS() = %v, want %v (cert %q, key %q)", got.Server.TLS(), tt.wantTLS, got.Server.TLSCert, got.Server.TLSKey)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted %+v", got.Server)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || !strings.HasPrefix(tt.wantErr, ke.Key+": ") {
				t.Errorf("KeyError = %+v, want the key of %q", ke, tt.wantErr)
			}
		})
	}
}

// TestServerTLSHalfSetIsOneProblem: the two keys are checked
// together, so a half-set pair is reported once, never as two problems.
func TestServerTLSHalfSetIsOneProblem(t *testing.T) {
	for _, tt := range []struct {
		cert, key string
		want      []string
	}{
		{"/c.pem", "", []string{"server.tls-key"}},
		{"", "/k.pem", []string{"server.tls-cert"}},
		{"", "", nil},
		{"/c.pem", "/k.pem", nil},
	} {
		c := validConfig()
		c.Server.TLSCert, c.Server.TLSKey = tt.cert, tt.key
		if got := keysOf(c.Validate()); !slices.Equal(got, tt.want) {
			t.Errorf("cert %q key %q: problem keys = %v, want %v", tt.cert, tt.key, got, tt.want)
		}
	}
}
