package config

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	tests := []struct {
		name                       string
		secret, rootPW, dbURL      string
		wantSecret, wantPW, wantDB string
	}{
		{"secrets set", "abc123456", "pw", "sqlite://x.db", "***", "***", "sqlite://x.db"},
		{"empty stays empty", "", "", "sqlite://:memory:", "", "", "sqlite://:memory:"},
		{"database password", "s", "", "postgres://lambda:hunter2@db:5432/lambda?sslmode=disable",
			"***", "", "postgres://lambda:xxxxx@db:5432/lambda?sslmode=disable"},
		{"database user without password", "s", "", "postgres://lambda@db/lambda", "***", "", "postgres://lambda@db/lambda"},
		{"unparsable database url with @", "s", "", "postgres://u:p@[bad/x", "***", "", "***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Lambda.Secret, c.Lambda.RootPassword, c.Database.URL = tt.secret, tt.rootPW, tt.dbURL
			r := c.Redacted()
			if r.Lambda.Secret != tt.wantSecret || r.Lambda.RootPassword != tt.wantPW || r.Database.URL != tt.wantDB {
				t.Errorf("Redacted = secret %q, root-password %q, url %q; want %q, %q, %q",
					r.Lambda.Secret, r.Lambda.RootPassword, r.Database.URL, tt.wantSecret, tt.wantPW, tt.wantDB)
			}
			if c.Lambda.Secret != tt.secret || c.Database.URL != tt.dbURL {
				t.Error("Redacted modified the original")
			}
		})
	}
}

func TestRedactedSharesNoSlices(t *testing.T) {
	c := validConfig()
	c.Lambda.BPFEnvAllow = []string{"BPFTRACE_STRLEN=deny"}
	c.Lambda.StapEnvAllow = []string{"SYSTEMTAP_COLORS=any"}
	r := c.Redacted()
	r.Lambda.BPFEnvAllow[0] = "CHANGED"
	r.Lambda.StapEnvAllow[0] = "CHANGED"
	if c.Lambda.BPFEnvAllow[0] != "BPFTRACE_STRLEN=deny" || c.Lambda.StapEnvAllow[0] != "SYSTEMTAP_COLORS=any" {
		t.Fatal("Redacted copy aliases the original's allow-lists")
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		in      string
		want    string // MarshalText of the result; "" means an error is expected
		wantErr string
	}{
		{"1s", "1s", ""},
		{"24h", "24h0m0s", ""},
		{"1h30m", "1h30m0s", ""},
		{"250ms", "250ms", ""},
		{"-5s", "-5s", ""},
		{"5", "", `invalid duration "5"`},
		{"", "", `invalid duration ""`},
		{"1 day", "", `invalid duration "1 day"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalText(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := d.MarshalText()
			if err != nil || string(out) != tt.want {
				t.Fatalf("MarshalText = %q, %v; want %q", out, err, tt.want)
			}
			var back Duration
			if err := back.UnmarshalText(out); err != nil || back != d {
				t.Fatalf("round trip %q -> %v, %v", out, back, err)
			}
		})
	}
}
