package binary

import (
	"bytes"
	"os"
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
