package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzVerify checks that no header string makes Verify panic or return
// anything but success or a refusal, with limits small enough that a
// well-formed header costs little to hash.
func FuzzVerify(f *testing.F) {
	f.Add(seedHeader)
	f.Add(makeHeader(f, seedUUID, seedSecret, cheap, salt(1, 16), 32))
	f.Add(makeHeader(f, seedUUID, seedSecret, Params{Argon2id, 16, 2, 2}, salt(2, 8), 16))
	f.Add(makeHeader(f, seedUUID, "wrong", cheap, salt(3, 16), 32))
	f.Add(seedUUID + "$argon2d$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add(seedUUID + "$argon2i$v=16$m=8,t=1,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==")
	f.Add(seedUUID + "$argon2i$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add(seedUUID + "$argon2$argon2i$v=19$$$")
	f.Add("$argon2")
	f.Add("")
	f.Add(strings.Repeat("$argon2i", 200))
	v := NewVerifier(seedUUID, seedSecret, Limits{MaxMemoryKiB: 64, MaxIterations: 2, MaxParallelism: 2, MaxConcurrent: 1, CacheSize: 16})
	v.floor = floor{memory: 8, iterations: 1} // keep fuzzed hashes cheap
	f.Fuzz(func(t *testing.T, header string) {
		err := v.Verify(context.Background(), header)
		if err == nil {
			if !strings.HasPrefix(header, seedUUID+"$argon2i$") && !strings.HasPrefix(header, seedUUID+"$argon2id$") {
				t.Fatalf("accepted %q", header)
			}
			return
		}
		if !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrBusy) {
			t.Fatalf("Verify(%q) = %v, want nil or ErrUnauthorized only", header, err)
		}
	})
}
