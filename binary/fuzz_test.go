package binary

import (
	"bytes"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzRead feeds hostile files to the ELF reader: it must return symbols
// or an error, never panic (read is called without Read's recover, so a
// panic in debug/elf is found here) and never hang.
func FuzzRead(f *testing.F) {
	small, err := os.ReadFile("/bin/true")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(small[:64])
	f.Add(small[:len(small)/3])
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("#!/bin/sh\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if s != nil {
				t.Fatal("symbols with an error")
			}
			return
		}
		if !slices.IsSorted(s.Functions) {
			t.Fatal("functions not sorted")
		}
		for _, fn := range s.Functions {
			if fn == "" || strings.Contains(fn, "@") {
				t.Fatalf("bad function name %q", fn)
			}
		}
	})
}

// FuzzGlob checks the wildcard matcher against path.Match, which has the
// same "*" and "?" semantics on ASCII names without "/", "[" or "\"
// (function names and symbols are ASCII; "?" of path.Match is a rune, ours
// a byte).
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{{"x*", "xmalloc"}, {"*a*b*", "aab"}, {"x?ree", "xfree"}, {"**?", ""}, {"a*", "b"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, name string) {
		if len(p) > 64 || len(name) > 256 || strings.ContainsAny(p+name, "/[\\") || !ascii(p+name) {
			return
		}
		want, err := path.Match(p, name)
		if err != nil {
			return
		}
		if got := glob(p, name, true); got != want {
			t.Fatalf("glob(%q, %q) = %v, path.Match says %v", p, name, got, want)
		}
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
