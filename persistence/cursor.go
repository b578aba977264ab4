package persistence

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidCursor reports a cursor token that ParseCursor cannot read.
var ErrInvalidCursor = errors.New("invalid cursor")

// Cursor is a keyset position in the ListRuns order (StartedAt, Thread,
// Path, all descending). Path is the table's key, so a position is exact
// even when runs share a start time and a thread: pages never skip or
// repeat a run, and runs created meanwhile (newer ones) do not shift later
// pages. Take it from the last run of a page with CursorOf; to hand it to a
// client, use the opaque String form and ParseCursor.
type Cursor struct {
	StartedAt time.Time
	Thread    int64
	Path      string
}

// CursorOf returns the position of r, to continue a listing after r.
func CursorOf(r Run) Cursor {
	return Cursor{StartedAt: dbTime(r.StartedAt), Thread: r.Thread, Path: r.Path}
}

// cursorToken is the JSON inside the opaque cursor string.
type cursorToken struct {
	StartedAt string `json:"t"`
	Thread    int64  `json:"n"`
	Path      string `json:"p"`
}

// String encodes c as an opaque URL-safe token (base64url of a small JSON
// object); ParseCursor reads it back.
func (c Cursor) String() string {
	b, _ := json.Marshal(cursorToken{
		StartedAt: dbTime(c.StartedAt).Format(time.RFC3339Nano),
		Thread:    c.Thread,
		Path:      c.Path,
	})
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a token made by Cursor.String. Errors wrap
// ErrInvalidCursor.
func ParseCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %w", ErrInvalidCursor, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var tok cursorToken
	if err := dec.Decode(&tok); err != nil {
		return Cursor{}, fmt.Errorf("%w: %w", ErrInvalidCursor, err)
	}
	if dec.More() {
		return Cursor{}, fmt.Errorf("%w: trailing data", ErrInvalidCursor)
	}
	t, err := time.Parse(time.RFC3339Nano, tok.StartedAt)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %w", ErrInvalidCursor, err)
	}
	t = dbTime(t)
	if y := t.Year(); y < 0 || y > 9999 { // String could not write it back
		return Cursor{}, fmt.Errorf("%w: year %d out of range", ErrInvalidCursor, y)
	}
	return Cursor{StartedAt: t, Thread: tok.Thread, Path: tok.Path}, nil
}
