package platform

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// TestAppendBase64 compares appendBase64 with encoding/base64 for every
// length up to 100 (each tail and padding case), a chunk-sized input, and
// appends to a non-empty dst.
func TestAppendBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{51200, 51199, 65536}
	for n := range 101 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		for _, prefix := range []string{"", `{"field":"`} {
			want := base64.StdEncoding.AppendEncode([]byte(prefix), src)
			if got := appendBase64([]byte(prefix), src); !bytes.Equal(got, want) {
				t.Fatalf("length %d, prefix %q: got %q, want %q", n, prefix, got, want)
			}
		}
	}
}

func FuzzAppendBase64(f *testing.F) {
	f.Add([]byte("hello, world\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, src, prefix []byte) {
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		if got := appendBase64(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func BenchmarkBase64(b *testing.B) {
	data := benchData()
	buf := make([]byte, 0, base64.StdEncoding.EncodedLen(len(data)))
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			buf = base64.StdEncoding.AppendEncode(buf[:0], data)
		}
	})
	b.Run("appendBase64", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			buf = appendBase64(buf[:0], data)
		}
	})
}
