package persistence

import (
	"errors"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []Cursor{
		{},
		{StartedAt: time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC), Thread: 54, Path: "/tmp/4633d686-f75d-4d1f-8415-02ce37d9e5f8.trace"},
		{StartedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), Thread: -1, Path: "ünï/\"quoted\"\n"},
	}
	for _, c := range tests {
		s := c.String()
		got, err := ParseCursor(s)
		if err != nil {
			t.Fatalf("ParseCursor(%q): %v", s, err)
		}
		if !got.StartedAt.Equal(c.StartedAt) || got.Thread != c.Thread || got.Path != c.Path {
			t.Fatalf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestCursorOfTruncates(t *testing.T) {
	zone := time.FixedZone("x", 3600)
	c := CursorOf(Run{StartedAt: time.Date(2025, 1, 1, 1, 0, 0, 999, zone), Thread: 3, Path: "p"})
	want := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if !c.StartedAt.Equal(want) || c.StartedAt.Location() != time.UTC {
		t.Fatalf("CursorOf StartedAt = %v, want %v", c.StartedAt, want)
	}
}

func TestParseCursorRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"!!!",
		"bm90IGpzb24",                     // "not json"
		"eyJ0IjoieCIsIm4iOjEsInAiOiJwIn0", // bad time
		"eyJ0IjoiMjAyNS0wMS0wMVQwMDowMDowMFoiLCJ6IjoxfQ", // unknown field
	} {
		if _, err := ParseCursor(s); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("ParseCursor(%q) = %v, want ErrInvalidCursor", s, err)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{StartedAt: time.Date(2025, 6, 1, 12, 0, 0, 5000, time.UTC), Thread: 54, Path: "/tmp/a.trace"}.String())
	f.Add(Cursor{}.String())
	f.Add("eyJ0IjoieCIsIm4iOjEsInAiOiJwIn0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("ParseCursor(%q) error %v does not wrap ErrInvalidCursor", s, err)
			}
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil {
			t.Fatalf("ParseCursor(%q) accepted, but its re-encoding %q is refused: %v", s, c.String(), err)
		}
		if !again.StartedAt.Equal(c.StartedAt) || again.Thread != c.Thread || again.Path != c.Path {
			t.Fatalf("re-encoding changed %+v into %+v", c, again)
		}
	})
}
