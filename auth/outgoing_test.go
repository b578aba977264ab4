package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct{ uuid, secret string }{
		{seedUUID, seedSecret},
		{"00000000-0000-0000-0000-000000000000", ""},
		{"a", "ünïcødé secret with $argon2 and spaces"},
		{"e1f7b6a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b", strings.Repeat("long", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.uuid, func(t *testing.T) {
			out, err := NewOutgoing(tt.uuid, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			h := out.Value()
			phc, ok := strings.CutPrefix(h, tt.uuid+"$argon2i$")
			if !ok {
				t.Fatalf("header %q does not start with the uuid and $argon2i$", h)
			}
			p, s, hash, err := Parse("$argon2i$" + phc)
			if err != nil {
				t.Fatalf("parsing own header: %v", err)
			}
			if want := (Params{Argon2i, 4096, 3, 1}); p != want || len(s) != 16 || len(hash) != 32 {
				t.Errorf("header params %+v, %d-byte salt, %d-byte hash; want %+v, 16, 32", p, len(s), len(hash), want)
			}
			if fields := strings.Split(phc, "$"); strings.Contains(fields[len(fields)-2]+fields[len(fields)-1], "=") {
				t.Errorf("header %q has base64 padding", h)
			}
			if err := NewVerifier(tt.uuid, tt.secret, Limits{}).Verify(context.Background(), h); err != nil {
				t.Errorf("own header does not verify: %v", err)
			}
			err = NewVerifier(tt.uuid, tt.secret+"x", Limits{}).Verify(context.Background(), h)
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("header verified with another secret: %v", err)
			}
		})
	}
}

func TestHeaderFreshSalt(t *testing.T) {
	a, err := Header(seedUUID, seedSecret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Header(seedUUID, seedSecret)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two headers are identical: %q", a)
	}
}

func TestHeaderRefusesBadUUID(t *testing.T) {
	for _, uuid := range []string{"", "x$argon2y"} {
		if h, err := Header(uuid, seedSecret); err == nil {
			t.Errorf("Header(%q) = %q, want an error", uuid, h)
		}
		if _, err := NewOutgoing(uuid, seedSecret); err == nil {
			t.Errorf("NewOutgoing(%q) succeeded, want an error", uuid)
		}
	}
}

func TestOutgoingRedacted(t *testing.T) {
	out, err := NewOutgoing(seedUUID, seedSecret)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("sending", "auth", out)
	for _, shown := range []string{
		fmt.Sprint(out), fmt.Sprintf("%v %+v %#v %s", out, out, out, out), logged.String(),
	} {
		if strings.Contains(shown, "argon2") || strings.Contains(shown, seedUUID) {
			t.Errorf("credential printed: %s", shown)
		}
	}
	v := NewVerifier(seedUUID, seedSecret, Limits{})
	if shown := fmt.Sprintf("%v %+v %#v %s", v, v, v, v); strings.Contains(shown, "[97 98 99") || strings.Contains(shown, seedSecret) {
		t.Errorf("verifier secret printed: %s", shown)
	}
	if !strings.HasPrefix(out.Value(), seedUUID+"$argon2i$") {
		t.Errorf("Value = %q", out.Value())
	}
}
