package binary

import (
	"os"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// bigBinary returns the largest of a few well-known shared libraries that
// this host has (libLLVM is about 110 MB), else /bin/bash.
func bigBinary() string {
	for _, p := range []string{
		"/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1",
		"/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
		"/usr/lib/aarch64-linux-gnu/libLLVM-15.so.1",
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return bash
}

// BenchmarkCheck compares a preflight that reads the binary (miss: what
// PUT /trace pays for a binary first seen) with one that finds it in the
// cache (hit: what a start pays after PUT).
func BenchmarkCheck(b *testing.B) {
	path := bigBinary()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("binary %s, %d MB", path, fi.Size()>>20)
	s, _, err := Inspect(path)
	if err != nil {
		b.Fatal(err)
	}
	info := tmpl(messages.BPF, path, s.Functions[len(s.Functions)/2])
	b.Run("miss", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			if _, err := NewChecker(0, nil).Check(info); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		c := NewChecker(0, nil)
		if _, err := c.Check(info); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Check(info); err != nil {
				b.Fatal(err)
			}
		}
	})
}
