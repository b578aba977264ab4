package auth

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

const seedPHC = "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"

func TestParse(t *testing.T) {
	b64 := base64.RawStdEncoding.EncodeToString
	padded := base64.StdEncoding.EncodeToString
	s16, h32 := b64(salt('s', 16)), b64(salt('h', 32))
	tests := []struct {
		name    string
		in      string
		want    Params
		saltLen int
		hashLen int
		errText string // substring of the error; "" means success
	}{
		{"seed", seedPHC, Params{Argon2i, 4096, 3, 1}, 16, 32, ""},
		{"argon2id", "$argon2id$v=19$m=65536,t=2,p=4$" + s16 + "$" + h32, Params{Argon2id, 65536, 2, 4}, 16, 32, ""},
		{"padded", "$argon2i$v=19$m=8,t=1,p=1$" + padded(salt('s', 16)) + "$" + padded(salt('h', 31)), Params{Argon2i, 8, 1, 1}, 16, 31, ""},
		{"min lengths", "$argon2i$v=19$m=8,t=1,p=1$" + b64(salt(1, 8)) + "$" + b64(salt(2, 16)), Params{Argon2i, 8, 1, 1}, 8, 16, ""},
		{"max lengths", "$argon2i$v=19$m=8,t=1,p=1$" + b64(salt(1, 64)) + "$" + b64(salt(2, 64)), Params{Argon2i, 8, 1, 1}, 64, 64, ""},
		{"huge but valid numbers", "$argon2i$v=19$m=4294967295,t=4294967295,p=16777215$" + s16 + "$" + h32, Params{Argon2i, 4294967295, 4294967295, 16777215}, 16, 32, ""},

		{"empty", "", Params{}, 0, 0, "malformed hash"},
		{"no leading dollar", "argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "malformed hash"},
		{"extra field", seedPHC + "$" + h32, Params{}, 0, 0, "malformed hash"},
		{"missing hash", "$argon2i$v=19$m=8,t=1,p=1$" + s16, Params{}, 0, 0, "malformed hash"},
		{"argon2d", "$argon2d$v=19$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, `unsupported variant "argon2d"`},
		{"upper case variant", "$Argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "unsupported variant"},
		{"long variant truncated in message", "$argon2i" + strings.Repeat("x", 100) + "$v=19$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, `"argon2ixxxxxxxxx"`},
		{"v=16", "$argon2i$v=16$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, `unsupported version "16"`},
		{"v=019", "$argon2i$v=019$m=8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "unsupported version"},
		{"no version", "$argon2i$m=8,t=1,p=1$" + s16 + "$" + h32 + "$", Params{}, 0, 0, "missing version"},
		{"wrong order", "$argon2i$v=19$t=1,m=8,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "parameter 1 must be m"},
		{"two params", "$argon2i$v=19$m=8,t=1$" + s16 + "$" + h32, Params{}, 0, 0, "want parameters"},
		{"four params", "$argon2i$v=19$m=8,t=1,p=1,keyid=a$" + s16 + "$" + h32, Params{}, 0, 0, "want parameters"},
		{"m zero", "$argon2i$v=19$m=0,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "parameter m must be at least 1"},
		{"t zero", "$argon2i$v=19$m=8,t=0,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "parameter t must be at least 1"},
		{"p zero", "$argon2i$v=19$m=8,t=1,p=0$" + s16 + "$" + h32, Params{}, 0, 0, "parameter p must be at least 1"},
		{"m below 8p", "$argon2i$v=19$m=15,t=1,p=2$" + s16 + "$" + h32, Params{}, 0, 0, "below 8·p"},
		{"p above argon2 max", "$argon2i$v=19$m=4294967295,t=1,p=16777216$" + s16 + "$" + h32, Params{}, 0, 0, "above argon2's"},
		{"m overflows", "$argon2i$v=19$m=4294967296,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "out of range"},
		{"leading zero", "$argon2i$v=19$m=08,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "leading zero"},
		{"sign", "$argon2i$v=19$m=+8,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "not a decimal"},
		{"empty number", "$argon2i$v=19$m=,t=1,p=1$" + s16 + "$" + h32, Params{}, 0, 0, "empty number"},
		{"bad salt base64", "$argon2i$v=19$m=8,t=1,p=1$!!!!!!!!!!!!$" + h32, Params{}, 0, 0, "salt is not base64"},
		{"url-safe base64", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + strings.Repeat("_-", 22), Params{}, 0, 0, "hash is not base64"},
		{"line break", "$argon2i$v=19$m=8,t=1,p=1$" + s16[:8] + "\n" + s16[8:] + "$" + h32, Params{}, 0, 0, "salt is not base64"},
		{"wrong padding", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "=$" + h32, Params{}, 0, 0, "salt is not base64"},
		{"non-canonical bits", "$argon2i$v=19$m=8,t=1,p=1$" + s16[:len(s16)-1] + "x$" + h32, Params{}, 0, 0, "salt is not base64"},
		{"salt too short", "$argon2i$v=19$m=8,t=1,p=1$" + b64(salt(1, 7)) + "$" + h32, Params{}, 0, 0, "salt is 7 bytes"},
		{"salt too long", "$argon2i$v=19$m=8,t=1,p=1$" + b64(salt(1, 65)) + "$" + h32, Params{}, 0, 0, "salt is 65 bytes"},
		{"salt far too long", "$argon2i$v=19$m=8,t=1,p=1$" + b64(salt(1, 300)) + "$" + h32, Params{}, 0, 0, "salt longer than 64 bytes"},
		{"hash too short", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + b64(salt(1, 15)), Params{}, 0, 0, "hash is 15 bytes"},
		{"hash too long", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + b64(salt(1, 65)), Params{}, 0, 0, "hash is 65 bytes"},
		{"hash far too long", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "$" + b64(salt(1, 300)), Params{}, 0, 0, "hash longer than 64 bytes"},
		{"empty hash", "$argon2i$v=19$m=8,t=1,p=1$" + s16 + "$", Params{}, 0, 0, "hash is 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, h, err := Parse(tt.in)
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.errText)
				}
				if p != (Params{}) || s != nil || h != nil {
					t.Errorf("Parse returned values with an error: %+v %x %x", p, s, h)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p != tt.want || len(s) != tt.saltLen || len(h) != tt.hashLen {
				t.Errorf("Parse = %+v, %d-byte salt, %d-byte hash; want %+v, %d, %d", p, len(s), len(h), tt.want, tt.saltLen, tt.hashLen)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	p, s, h, err := Parse(seedPHC)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Encode(s, h); got != seedPHC {
		t.Errorf("Encode = %q, want %q", got, seedPHC)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// encodes back to a string that parses to the same values.
func FuzzParse(f *testing.F) {
	f.Add(seedPHC)
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==")
	f.Add("$argon2d$v=16$m=0,t=0,p=0$$")
	f.Add("$argon2i$v=19$m=4294967296,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, in string) {
		p, s, h, err := Parse(in)
		if err != nil {
			return
		}
		if p.Memory < 8*p.Parallelism || p.Iterations == 0 || p.Parallelism == 0 ||
			len(s) < MinSaltLen || len(s) > MaxSaltLen || len(h) < MinHashLen || len(h) > MaxHashLen {
			t.Fatalf("Parse accepted out-of-bounds %+v salt %d hash %d", p, len(s), len(h))
		}
		p2, s2, h2, err := Parse(p.Encode(s, h))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", p.Encode(s, h), err)
		}
		if p2 != p || !bytes.Equal(s2, s) || !bytes.Equal(h2, h) {
			t.Fatalf("round trip changed values: %+v vs %+v", p2, p)
		}
	})
}
