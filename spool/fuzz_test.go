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

// FuzzReadStaged decodes arbitrary bytes as a staging file read from
// stream offset committed. It must never panic, never return more bytes
// than the file holds, and what it returns without an error must read
// back the same from a file written afresh (the form NewWriter rewrites
// it to).
func FuzzReadStaged(f *testing.F) {
	dir := f.TempDir()
	st, err := createStage(dir, 3, []byte("abc"))
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []stageRec{{6, "de\nf"}, {20, "gh"}} {
		if err := st.write(r.off, []byte(r.data)); err != nil {
			f.Fatal(err)
		}
	}
	st.close()
	file, err := os.ReadFile(filepath.Join(dir, stageName))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []int64{0, 3, 5, 10, 20, 21, 22, 1 << 62} {
		f.Add(file, c)
	}
	f.Add(file[:len(file)-1], int64(3))
	f.Add(file[:stageHeader+stageRecHeader-1], int64(3))
	f.Add(append([]byte(stageMagicV1), 3, 0, 0, 0, 0, 0, 0, 0, 'x', 'y'), int64(4))
	f.Add([]byte(stageMagic), int64(0))
	f.Add([]byte{}, int64(0))

	f.Fuzz(func(t *testing.T, file []byte, committed int64) {
		got, err := decodeStaged(file, committed)
		if len(got) > len(file) {
			t.Fatalf("%d bytes from a file of %d", len(got), len(file))
		}
		if err != nil || committed < 0 {
			return
		}
		dir := t.TempDir()
		st, err := createStage(dir, committed, got)
		if err != nil {
			t.Fatal(err)
		}
		st.close()
		again, err := readStaged(dir, committed)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("written afresh: %q, %v; want %q", again, err, got)
		}
	})
}

// FuzzStagedStream writes a stream to a Writer (the commit sizes and the
// flushes taken from script), leaves it as a crash does, damages its
// staging file (cut at cut, one byte xored with x at flip) and decodes
// it from the spool's end: the bytes returned are always the stream's from
// there on (a prefix of them when the file was damaged), never another
// byte; undamaged, they are exactly the bytes not in a chunk.
func FuzzStagedStream(f *testing.F) {
	f.Add([]byte{3, 5, 7, 200, 1, 1, 1, 9}, uint16(0xffff), uint16(0), byte(0))
	f.Add([]byte{3, 5, 7, 200, 1, 1, 1, 9}, uint16(40), uint16(0), byte(0))
	f.Add([]byte{17, 0, 4, 4, 4}, uint16(0xffff), uint16(30), byte(0x10))
	f.Add([]byte{60, 0xff, 2, 2}, uint16(0xffff), uint16(9), byte(1))
	f.Add([]byte{}, uint16(0), uint16(0), byte(0))

	f.Fuzz(func(t *testing.T, script []byte, cut, flip uint16, x byte) {
		if len(script) > 64 {
			script = script[:64]
		}
		s, err := Create(filepath.Join(t.TempDir(), "sp"), nil, Options{Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		w := NewWriter(s, 16)
		var stream []byte
		for i, b := range script {
			if b == 0xff {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			n := int(b % 64)
			p := w.Space(n)
			for j := range p {
				p[j] = byte('a' + (len(stream)+j)%26)
				if (i*7+j)%11 == 10 {
					p[j] = '\n'
				}
			}
			stream = append(stream, p...)
			if err := w.Commit(n); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.StagingErr(); err != nil {
			t.Fatal(err)
		}
		w.Abandon()
		file, err := os.ReadFile(filepath.Join(s.Dir(), stageName))
		if err != nil {
			t.Fatal(err)
		}
		committed := s.Bytes()
		got, err := decodeStaged(file, committed)
		if err != nil || !bytes.Equal(got, stream[committed:]) {
			t.Fatalf("undamaged: %q, %v; want %q", got, err, stream[committed:])
		}
		damaged := bytes.Clone(file[:min(int(cut), len(file))])
		if int(flip) < len(damaged) {
			damaged[flip] ^= x
		}
		got, _ = decodeStaged(damaged, committed)
		if !bytes.HasPrefix(stream[committed:], got) {
			t.Fatalf("damaged (cut at %d, byte %d ^ %#x): %q, not a prefix of %q", cut, flip, x, got, stream[committed:])
		}
	})
}
