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

// FuzzArgon2 compares argon2Key with golang.org/x/crypto/argon2 on small
// random parameters, reusing one buffer across inputs.
func FuzzArgon2(f *testing.F) {
	f.Add(true, []byte("abc123456"), []byte("saltsalt"), uint8(1), uint16(8), uint8(1), uint8(32))
	f.Add(false, []byte(""), []byte("0123456789abcdef"), uint8(3), uint16(300), uint8(3), uint8(70))
	var buf []block
	f.Fuzz(func(t *testing.T, id bool, pw, salt []byte, tc uint8, m uint16, p uint8, keyLen uint8) {
		time, memory, threads := uint32(tc%4+1), uint32(m%512+8), uint32(p%4+1)
		n := uint32(keyLen%100 + 4)
		variant, ref := Argon2i, argon2.Key
		if id {
			variant, ref = Argon2id, argon2.IDKey
		}
		want := ref(pw, salt, time, memory, uint8(threads), n)
		var got []byte
		got, buf = argon2Key(variant, pw, salt, time, memory, threads, n, buf)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s t=%d m=%d p=%d len=%d: got %x, want %x", variant, time, memory, threads, n, got, want)
		}
	})
}
