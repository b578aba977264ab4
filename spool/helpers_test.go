package spool

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// chunk returns the deterministic test chunk i, 8 to 14 bytes long.
func chunk(i int) []byte {
	return fmt.Appendf(nil, "%06d:%s\n", i, strings.Repeat(string(rune('a'+i%26)), i%7))
}

// threePerSegment is a SegmentBytes that holds exactly three test chunks.
const threePerSegment = segmentHeaderSize + 3*(recordHeaderSize+14)

// sumOf is the SHA-256 of chunks lo..hi-1 concatenated.
func sumOf(lo, hi int) [sha256.Size]byte {
	h := sha256.New()
	for i := lo; i < hi; i++ {
		h.Write(chunk(i))
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// create makes a spool in a fresh temporary directory, closed at cleanup.
func create(t testing.TB, o Options) *Spool {
	t.Helper()
	s, err := Create(filepath.Join(t.TempDir(), "sp"), []byte(`{"trace":"t"}`), o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen opens dir, closed at cleanup.
func reopen(t testing.TB, dir string, o Options) (*Spool, Recovery) {
	t.Helper()
	s, r, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, r
}

// appendRange appends chunks lo..hi-1 and checks their numbers.
func appendRange(t testing.TB, s *Spool, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		no, err := s.Append(chunk(i))
		if err != nil {
			t.Fatalf("Append(chunk %d): %v", i, err)
		}
		if no != int64(i) {
			t.Fatalf("Append(chunk %d) = %d", i, no)
		}
	}
}

// ackRange acknowledges chunks lo..hi-1.
func ackRange(t testing.TB, s *Spool, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		if err := s.Ack(int64(i)); err != nil {
			t.Fatalf("Ack(%d): %v", i, err)
		}
	}
}

// checkChunks reads chunks lo..hi-1 and compares them with chunk(i).
func checkChunks(t testing.TB, s *Spool, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		got, err := s.Read(int64(i))
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if !bytes.Equal(got, chunk(i)) {
			t.Fatalf("Read(%d) = %q, want %q", i, got, chunk(i))
		}
	}
}

// checkState compares the counters and the hash with chunks 0..next-1
// of which 0..acked-1 are acknowledged.
func checkState(t testing.TB, s *Spool, next, acked int) {
	t.Helper()
	var bytes, ackedBytes int64
	for i := range next {
		bytes += int64(len(chunk(i)))
		if i < acked {
			ackedBytes += int64(len(chunk(i)))
		}
	}
	if got := s.Next(); got != int64(next) {
		t.Errorf("Next() = %d, want %d", got, next)
	}
	if got := s.Acked(); got != int64(acked) {
		t.Errorf("Acked() = %d, want %d", got, acked)
	}
	if got := s.Bytes(); got != bytes {
		t.Errorf("Bytes() = %d, want %d", got, bytes)
	}
	if got := s.AckedBytes(); got != ackedBytes {
		t.Errorf("AckedBytes() = %d, want %d", got, ackedBytes)
	}
	if got := s.Pending(); got != bytes-ackedBytes {
		t.Errorf("Pending() = %d, want %d", got, bytes-ackedBytes)
	}
	if got, want := s.SHA256(), sumOf(0, next); got != want {
		t.Errorf("SHA256() = %x, want %x", got, want)
	}
}

// segFiles lists the segment file names in dir.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

// recordOffset is the offset of chunk i's record in a segment holding
// chunks first..i.
func recordOffset(first, i int) int64 {
	off := int64(segmentHeaderSize)
	for j := first; j < i; j++ {
		off += recordHeaderSize + int64(len(chunk(j)))
	}
	return off
}

// modifyFile applies f to the bytes of path and writes them back.
func modifyFile(t testing.TB, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}
