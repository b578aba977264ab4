package auth

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestArgon2MatchesReference compares argon2Key with golang.org/x/crypto's
// argon2 over both variants, several costs, lane counts, salt, password and
// key lengths, reusing one buffer across calls.
func TestArgon2MatchesReference(t *testing.T) {
	var buf []block
	for _, variant := range []Variant{Argon2i, Argon2id} {
		for _, c := range []struct{ m, t, p, keyLen uint32 }{
			{8, 1, 1, 32}, {64, 1, 1, 32}, {64, 2, 2, 16}, {96, 3, 3, 64}, {100, 1, 4, 65},
			{257, 2, 1, 32}, {1024, 1, 8, 128}, {4096, 3, 1, 32}, {4096, 1, 4, 1024}, {1000, 4, 2, 33},
		} {
			for _, pw := range []string{"", "abc123456"} {
				name := fmt.Sprintf("%s m=%d t=%d p=%d len=%d pw=%q", variant, c.m, c.t, c.p, c.keyLen, pw)
				salt := bytes.Repeat([]byte{byte(c.m)}, 8+int(c.t))
				ref := argon2.Key
				if variant == Argon2id {
					ref = argon2.IDKey
				}
				want := ref([]byte(pw), salt, c.t, c.m, uint8(c.p), c.keyLen)
				var got []byte
				got, buf = argon2Key(variant, []byte(pw), salt, c.t, c.m, c.p, c.keyLen, buf)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: got %x, want %x", name, got, want)
				}
			}
		}
	}
}

func TestArgon2SeedExample(t *testing.T) {
	_, s, h, err := Parse(seedHeader[len(seedUUID):])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := argon2Key(Argon2i, []byte(seedSecret), s, 3, 4096, 1, uint32(len(h)), nil)
	if !bytes.Equal(got, h) {
		t.Fatalf("seed example: got %x, want %x", got, h)
	}
}
