package spool

import (
	"bytes"
	"testing"
)

func TestCut(t *testing.T) {
	tests := []struct {
		name  string
		buf   string
		size  int
		flush bool
		want  int
	}{
		{"empty", "", 10, false, 0},
		{"empty flush", "", 10, true, 0},
		{"short, no flush", "abc\n", 10, false, 0},
		{"short flush ends at newline", "abc\ndef", 10, true, 4},
		{"short flush without newline takes all", "abcdef", 10, true, 6},
		{"full cut at last newline within size", "ab\ncd\nefghijkl", 8, false, 6},
		{"full without newline cuts at size", "abcdefghijkl", 8, false, 8},
		{"newline just past size is not used", "abcdefgh\nij", 8, false, 8},
		{"newline at size boundary", "abcdefg\nij", 8, false, 8},
		{"exactly size", "abcdefgh", 8, false, 8},
		{"size one", "a\nb", 1, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cut([]byte(tt.buf), tt.size, tt.flush); got != tt.want {
				t.Errorf("cut(%q, %d, %v) = %d, want %d", tt.buf, tt.size, tt.flush, got, tt.want)
			}
		})
	}
}

// FuzzCut checks cut's invariants: a chunk is never larger than size, is
// cut only when full or flushing, and ends at a newline whenever its window
// held one.
func FuzzCut(f *testing.F) {
	f.Add([]byte("a\nbc\n"), 3, false)
	f.Add([]byte("abcdef"), 4, true)
	f.Fuzz(func(t *testing.T, buf []byte, size int, flush bool) {
		if size < 1 || size > 1<<16 {
			return
		}
		n := cut(buf, size, flush)
		switch {
		case n < 0 || n > size || n > len(buf):
			t.Fatalf("cut(%q, %d) = %d out of range", buf, size, n)
		case n == 0 && (len(buf) >= size || flush && len(buf) > 0):
			t.Fatalf("cut(%q, %d, %v) = 0 but a chunk is due", buf, size, flush)
		case n > 0 && len(buf) < size && !flush:
			t.Fatalf("cut(%q, %d) = %d before the buffer is full", buf, size, n)
		}
		window := buf
		if len(window) > size {
			window = window[:size]
		}
		if n > 0 && bytes.IndexByte(window, '\n') >= 0 && buf[n-1] != '\n' {
			t.Fatalf("cut(%q, %d) = %d does not end at a newline", buf, size, n)
		}
	})
}
