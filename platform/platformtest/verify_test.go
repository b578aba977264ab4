package platformtest

import (
	"errors"
	"strings"
	"testing"
)

const (
	testUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	testSecret = "abc123456"
	// apiExample is the header given in API.md.
	apiExample = "4633d686-f75d-4d1f-8415-02ce37d9e5f8$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"
)

func TestVerify(t *testing.T) {
	salt := []byte("0123456789abcdef")
	idHeader := HeaderWithSalt(testUUID, testSecret, salt, true)
	tests := []struct {
		name   string
		header string
		uuid   string
		secret string
		ok     bool
	}{
		{"API.md example", apiExample, testUUID, testSecret, true},
		{"example, wrong secret", apiExample, testUUID, "abc12345", false},
		{"example, wrong uuid", apiExample, "4633d686-f75d-4d1f-8415-02ce37d9e5f9", testSecret, false},
		{"fresh argon2i", Header(testUUID, testSecret), testUUID, testSecret, true},
		{"argon2id", idHeader, testUUID, testSecret, true},
		{"argon2d refused", strings.Replace(idHeader, "$argon2id$", "$argon2d$", 1), testUUID, testSecret, false},
		{"version 16 refused", strings.Replace(apiExample, "v=19", "v=16", 1), testUUID, testSecret, false},
		{"changed cost", strings.Replace(apiExample, "t=3", "t=2", 1), testUUID, testSecret, false},
		{"no uuid", strings.TrimPrefix(apiExample, testUUID), testUUID, testSecret, false},
		{"no argon2", testUUID, testUUID, testSecret, false},
		{"empty", "", testUUID, testSecret, false},
		{"padded salt", strings.Replace(apiExample, "PpJvSw$", "PpJvSw==$", 1), testUUID, testSecret, false},
		{"bad base64 hash", apiExample + "!", testUUID, testSecret, false},
		{"truncated", apiExample[:len(apiExample)-10], testUUID, testSecret, false},
		{"extra field", apiExample + "$x", testUUID, testSecret, false},
		{"params out of order", strings.Replace(apiExample, "m=4096,t=3,p=1", "t=3,m=4096,p=1", 1), testUUID, testSecret, false},
		{"huge memory", strings.Replace(apiExample, "m=4096", "m=4194304", 1), testUUID, testSecret, false},
		{"zero parallelism", strings.Replace(apiExample, "p=1", "p=0", 1), testUUID, testSecret, false},
		{"leading zero", strings.Replace(apiExample, "t=3", "t=03", 1), testUUID, testSecret, false},
		{"space before", " " + apiExample, testUUID, testSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.header, tt.uuid, tt.secret)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("Verify = nil, want an error")
				}
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("Verify = %v, does not wrap ErrUnauthorized", err)
				}
			}
		})
	}
}

func TestHeaderFormat(t *testing.T) {
	h := HeaderWithSalt(testUUID, testSecret, []byte{0x97, 0x14, 0x0a, 0x2b, 0xf2, 0x46, 0x44, 0xba, 0x9c, 0xd3, 0x5c, 0x82, 0x3e, 0x92, 0x6f, 0x4b}, false)
	if h != apiExample {
		t.Fatalf("HeaderWithSalt with the example's salt = %q, want %q", h, apiExample)
	}
	a, b := Header(testUUID, testSecret), Header(testUUID, testSecret)
	if a == b {
		t.Fatal("two Header calls gave the same value: salt not random")
	}
}
