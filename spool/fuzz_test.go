package spool

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes arbitrary bytes as the segment file and the state file
// of a spool. Open must never fail or panic on them, must leave a
// consistent spool (every unacknowledged chunk readable, the hash matching
// the chunks, appends numbered on), and a second Open must find nothing
// left to repair.
func FuzzOpen(f *testing.F) {
	for _, dir := range []string{filepath.Join("testdata", "golden"), fuzzSeedSpool(f)} {
		seg, err := os.ReadFile(filepath.Join(dir, segmentName(0)))
		if err != nil {
			f.Fatal(err)
		}
		state, err := os.ReadFile(filepath.Join(dir, stateFileName))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seg, state)
		f.Add(seg[:len(seg)-5], state)
		f.Add(seg[:segmentHeaderSize+3], state[:stateSlotSize])
		f.Add(append(bytes.Clone(seg), seg[segmentHeaderSize:]...), state)
	}
	f.Add([]byte{}, []byte{})

	f.Fuzz(func(t *testing.T, seg, state []byte) {
		dir := t.TempDir()
		for name, b := range map[string][]byte{metaFile: []byte("m"), stateFileName: state, segmentName(0): seg} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o := Options{Sync: SyncNever}
		s, r, err := Open(dir, o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		next, acked := s.Next(), s.Acked()
		if r.Chunks != next || r.Acked != acked || acked > next || s.Pending() != s.Bytes()-s.AckedBytes() || s.Pending() < 0 {
			t.Fatalf("inconsistent: %+v, Next %d, Acked %d, Pending %d", r, next, acked, s.Pending())
		}
		h := sha256.New()
		for i := acked; i < next; i++ {
			data, err := s.Read(i)
			if err != nil {
				t.Fatalf("Read(%d) of %d..%d: %v", i, acked, next, err)
			}
			h.Write(data)
		}
		if acked == 0 && [sha256.Size]byte(h.Sum(nil)) != s.SHA256() {
			t.Fatal("SHA256() differs from the hash of the chunks read")
		}
		no, err := s.Append([]byte("more"))
		switch {
		case s.Sealed() && !errors.Is(err, ErrSealed):
			t.Fatalf("Append to a sealed spool = %v", err)
		case !s.Sealed() && (err != nil || no != next):
			t.Fatalf("Append = %d, %v; want %d", no, err, next)
		}
		sum := s.SHA256()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s2, r2, err := Open(dir, o)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s2.Close()
		if len(r2.Damage) != 0 || r2.DroppedBytes != 0 || s2.Acked() != acked || s2.SHA256() != sum {
			t.Fatalf("second Recovery = %+v (first %+v)", r2, r)
		}
	})
}

// fuzzSeedSpool writes a small spool and returns its directory.
func fuzzSeedSpool(f *testing.F) string {
	s, err := Create(filepath.Join(f.TempDir(), "seed"), nil, Options{Sync: SyncNever})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Append(chunk(i)); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	return s.Dir()
}
