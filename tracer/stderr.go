package tracer

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// DefaultStderrLimit is the number of stderr bytes kept when
// Command.StderrLimit is zero or negative.
const DefaultStderrLimit = 64 << 10

// droppedFormat is the note put in front of a stderr tail that was cut.
const droppedFormat = "…(%d bytes dropped)\n"

// tailBuffer is an io.Writer that keeps only the last limit bytes written to
// it, in a ring that grows up to limit bytes, and counts everything. It is
// safe for concurrent use.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte // grows to limit bytes, then is used as a ring
	head  int    // when len(buf) == limit: index of the oldest byte
	total int64  // bytes written in all
}

func newTailBuffer(limit int) *tailBuffer {
	if limit <= 0 {
		limit = DefaultStderrLimit
	}
	return &tailBuffer{limit: limit}
}

// Write keeps the tail of p; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.total += int64(n)
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		t.head = 0
		return n, nil
	}
	if room := t.limit - len(t.buf); room > 0 {
		c := min(room, len(p))
		t.buf = append(t.buf, p[:c]...)
		p = p[c:]
	}
	for len(p) > 0 {
		c := copy(t.buf[t.head:], p)
		p = p[c:]
		t.head = (t.head + c) % t.limit
	}
	return n, nil
}

// Total returns the number of bytes written so far.
func (t *tailBuffer) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// String returns at most limit bytes: the kept tail, preceded by a note
// "…(N bytes dropped)\n" when bytes were dropped and the limit leaves room
// for it. A cut tail starts at a UTF-8 character boundary where it can.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := make([]byte, 0, len(t.buf))
	kept = append(kept, t.buf[t.head:]...)
	kept = append(kept, t.buf[:t.head]...)
	if t.total == int64(len(kept)) {
		return string(kept)
	}
	// The note for the whole total is at least as long as the real note.
	room := t.limit - len(fmt.Sprintf(droppedFormat, t.total))
	if room <= 0 {
		return string(trimToRune(kept))
	}
	tail := trimToRune(kept[len(kept)-min(room, len(kept)):])
	return fmt.Sprintf(droppedFormat, t.total-int64(len(tail))) + string(tail)
}

// trimToRune drops up to utf8.UTFMax-1 leading continuation bytes, so a tail
// cut inside a multi-byte character starts at the next character.
func trimToRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	return b
}
