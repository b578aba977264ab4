package tracer

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"empty", 10, nil, ""},
		{"fits", 10, []string{"abc", "def"}, "abcdef"},
		{"exactly full", 6, []string{"abc", "def"}, "abcdef"},
		{"too small for the note", 6, []string{"abc", "defg"}, "bcdefg"},
		{"ring wraps", 40, []string{strings.Repeat("a", 35), strings.Repeat("b", 10)},
			"…(27 bytes dropped)\n" + strings.Repeat("a", 8) + strings.Repeat("b", 10)},
		{"one big write", 30, []string{strings.Repeat("x", 100) + "0123456789"},
			"…(103 bytes dropped)\n3456789"},
		{"many small writes", 25, strings.Split(strings.Repeat("ab", 50), ""),
			"…(98 bytes dropped)\nab"},
		{"cut inside a character", 27, []string{strings.Repeat("é", 15)},
			"…(26 bytes dropped)\néé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTailBuffer(tt.limit)
			var total int
			for _, w := range tt.writes {
				n, err := tb.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				total += n
			}
			got := tb.String()
			if got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if len(got) > tt.limit {
				t.Errorf("len = %d > limit %d", len(got), tt.limit)
			}
			if tb.Total() != int64(total) {
				t.Errorf("Total() = %d, want %d", tb.Total(), total)
			}
		})
	}
}

func TestTailBufferDefaultLimit(t *testing.T) {
	tb := newTailBuffer(0)
	_, _ = tb.Write(bytes.Repeat([]byte("z"), 3*DefaultStderrLimit))
	if got := tb.String(); len(got) > DefaultStderrLimit || !strings.HasSuffix(got, "zzz") {
		t.Errorf("len(String()) = %d, want <= %d", len(got), DefaultStderrLimit)
	}
}

// FuzzTailBuffer checks the ring against the plain tail of everything
// written.
func FuzzTailBuffer(f *testing.F) {
	f.Add(40, []byte("hello world"), uint8(3))
	f.Add(30, bytes.Repeat([]byte("é"), 40), uint8(7))
	f.Add(1, []byte("ab"), uint8(1))
	f.Fuzz(func(t *testing.T, limit int, data []byte, chunk uint8) {
		if limit <= 0 || limit > 1<<16 || chunk == 0 {
			return
		}
		tb := newTailBuffer(limit)
		for rest := data; len(rest) > 0; {
			n := min(int(chunk), len(rest))
			_, _ = tb.Write(rest[:n])
			rest = rest[n:]
		}
		got := tb.String()
		if len(got) > limit {
			t.Fatalf("len %d > limit %d", len(got), limit)
		}
		if len(data) <= limit {
			if got != string(data) {
				t.Fatalf("got %q, want everything %q", got, data)
			}
			return
		}
		tail := got
		if note, rest, ok := strings.Cut(got, "\n"); ok && strings.HasPrefix(note, "…(") {
			var dropped int
			if _, err := fmt.Sscanf(note, "…(%d bytes dropped)", &dropped); err != nil {
				t.Fatalf("bad note %q", note)
			}
			tail = rest
			if dropped+len(tail) != len(data) {
				t.Fatalf("dropped %d + kept %d != %d", dropped, len(tail), len(data))
			}
		}
		if !bytes.HasSuffix(data, []byte(tail)) || len(data)-len(tail) > len(data) {
			t.Fatalf("%q is not a tail of the input", tail)
		}
	})
}
