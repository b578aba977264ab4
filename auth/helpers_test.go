package auth

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// The seed document's example, a valid header for seedSecret.
const (
	seedUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	seedSecret = "abc123456"
	seedHeader = seedUUID + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"
)

// cheap are small argon2 parameters that keep tests fast.
var cheap = Params{Variant: Argon2i, Memory: 64, Iterations: 1, Parallelism: 1}

// makeHeader builds a header with argon2 directly, independent of Verifier.
// A salt of n repeated copies of seed byte b keeps headers distinct.
func makeHeader(t testing.TB, uuid, secret string, p Params, salt []byte, hashLen uint32) string {
	t.Helper()
	derive := argon2.Key
	if p.Variant == Argon2id {
		derive = argon2.IDKey
	}
	hash := derive([]byte(secret), salt, p.Iterations, p.Memory, uint8(p.Parallelism), hashLen)
	return uuid + p.Encode(salt, hash)
}

// salt returns a salt of n bytes all equal to b.
func salt(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// fakeClock is a settable clock for cache expiry tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newTestVerifier returns a verifier for seedUUID and seedSecret with l and a
// fake clock, its cost floor lowered so that cheap headers verify.
func newTestVerifier(l Limits) (*Verifier, *fakeClock) {
	v := NewVerifier(seedUUID, seedSecret, l)
	v.floor = floor{memory: 8, iterations: 1}
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	v.now = clock.now
	return v, clock
}

// waitFor polls cond until it holds; it synchronises goroutines and asserts
// nothing about time beyond a generous deadline against hangs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waiters returns how many calls wait on the flight for header, or -1.
func (v *Verifier) waiters(header string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	f, ok := v.flights[headerDigest(header)]
	if !ok {
		return -1
	}
	return f.waiters
}
