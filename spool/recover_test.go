package spool

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestTornTail damages the end of the last segment in the ways a crash or
// a bad disk does, and checks that Open keeps the valid prefix, reports
// what it dropped, and that appending continues with the right numbers.
func TestTornTail(t *testing.T) {
	const n = 10
	last := recordOffset(0, n-1) // offset of chunk 9's record
	lastSize := int64(recordHeaderSize + len(chunk(n-1)))
	tests := []struct {
		name      string
		damage    func([]byte) []byte
		wantNext  int
		wantBytes int64 // DroppedBytes
	}{
		{"cut inside the record header", func(b []byte) []byte { return b[:last+7] }, n - 1, 7},
		{"cut right after the record header", func(b []byte) []byte { return b[:last+recordHeaderSize] }, n - 1, recordHeaderSize},
		{"cut inside the data", func(b []byte) []byte { return b[:len(b)-3] }, n - 1, lastSize - 3},
		{"flipped data byte", func(b []byte) []byte { b[len(b)-2] ^= 0x40; return b }, n - 1, lastSize},
		{"flipped length byte", func(b []byte) []byte { b[last+12] ^= 0x01; return b }, n - 1, lastSize},
		{"flipped chunk number", func(b []byte) []byte { b[last+4] ^= 0x01; return b }, n - 1, lastSize},
		{"flipped checksum", func(b []byte) []byte { b[last+16] ^= 0x80; return b }, n - 1, lastSize},
		{"garbage appended", func(b []byte) []byte { return append(b, "garbage after the last record"...) }, n, 29},
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, n, 4096},
		{"header of the next chunk, no data", func(b []byte) []byte {
			var h [recordHeaderSize]byte
			putRecordHeader(h[:], n, []byte("lost"))
			return append(b, h[:]...)
		}, n, recordHeaderSize},
		{"record repeating the last chunk's number", func(b []byte) []byte {
			return append(b, b[last:]...)
		}, n, lastSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Sync: SyncNever}
			s := create(t, o)
			appendRange(t, s, 0, n)
			ackRange(t, s, 0, 3)
			s.Close()
			modifyFile(t, filepath.Join(s.Dir(), segmentName(0)), tt.damage)

			s2, r := reopen(t, s.Dir(), o)
			if r.DroppedBytes != tt.wantBytes || r.Chunks != int64(tt.wantNext) || r.Acked != 3 {
				t.Errorf("Recovery = %+v; want Chunks %d, DroppedBytes %d", r, tt.wantNext, tt.wantBytes)
			}
			if len(r.Damage) != 1 {
				t.Errorf("Damage = %q, want one entry", r.Damage)
			}
			checkState(t, s2, tt.wantNext, 3)
			checkChunks(t, s2, 3, tt.wantNext)
			appendRange(t, s2, tt.wantNext, n+5)
			checkChunks(t, s2, 3, n+5)
			s2.Close()

			// The repair was written: a second Open finds nothing to report.
			s3, r := reopen(t, s.Dir(), o)
			if len(r.Damage) != 0 || r.DroppedBytes != 0 {
				t.Errorf("second Recovery = %+v", r)
			}
			checkState(t, s3, n+5, 3)
		})
	}
}

// segmentsOf3 makes a spool whose segments hold three chunks each:
// chunks 0-2, 3-5, 6-8, 9-11.
func segmentsOf3(t *testing.T, acked int) *Spool {
	t.Helper()
	o := Options{Sync: SyncNever, SegmentBytes: threePerSegment}
	s := create(t, o)
	appendRange(t, s, 0, 12)
	ackRange(t, s, 0, acked)
	s.Close()
	want := []string{segmentName(0), segmentName(3), segmentName(6), segmentName(9)}
	if acked >= 3 {
		want = want[acked/3:]
	}
	if got := segFiles(t, s.Dir()); !slices.Equal(got, want) {
		t.Fatalf("segments = %v, want %v", got, want)
	}
	return s
}

// TestCorruptionInTheMiddle: damage in an older segment drops everything
// from the bad record on, later segments included.
func TestCorruptionInTheMiddle(t *testing.T) {
	s := segmentsOf3(t, 2)
	// Flip a byte of chunk 4, in the second of four segments.
	modifyFile(t, filepath.Join(s.Dir(), segmentName(3)), func(b []byte) []byte {
		b[recordOffset(3, 4)+recordHeaderSize] ^= 1
		return b
	})
	s2, r := reopen(t, s.Dir(), Options{Sync: SyncNever})
	if r.Chunks != 4 || r.Acked != 2 || r.DroppedSegments != 2 || r.DroppedChunks != 6 {
		t.Errorf("Recovery = %+v; want 4 chunks, 2 acked, 2 segments and 6 chunks dropped", r)
	}
	if len(r.Damage) != 3 {
		t.Errorf("Damage = %q, want 3 entries", r.Damage)
	}
	if got, want := segFiles(t, s.Dir()), []string{segmentName(0), segmentName(3)}; !slices.Equal(got, want) {
		t.Errorf("segments = %v, want %v", got, want)
	}
	checkState(t, s2, 4, 2)
	checkChunks(t, s2, 2, 4)
	appendRange(t, s2, 4, 8)
	checkChunks(t, s2, 2, 8)
}

// TestMissingMiddleSegment: a hole in unacknowledged chunks ends the
// chain; segments after it are deleted.
func TestMissingMiddleSegment(t *testing.T) {
	s := segmentsOf3(t, 1)
	if err := os.Remove(filepath.Join(s.Dir(), segmentName(6))); err != nil {
		t.Fatal(err)
	}
	s2, r := reopen(t, s.Dir(), Options{Sync: SyncNever})
	if r.Chunks != 6 || r.DroppedSegments != 1 || r.DroppedChunks != 3 {
		t.Errorf("Recovery = %+v", r)
	}
	checkState(t, s2, 6, 1)
}

// TestStaleSegmentBeforeHole: an acknowledged segment whose deletion was
// lost while a later one's was not is removed quietly.
func TestStaleSegmentBeforeHole(t *testing.T) {
	o := Options{Sync: SyncNever, SegmentBytes: threePerSegment}
	s := create(t, o)
	appendRange(t, s, 0, 12)
	seg0, err := os.ReadFile(filepath.Join(s.Dir(), segmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	ackRange(t, s, 0, 7)
	s.Close()
	if err := os.WriteFile(filepath.Join(s.Dir(), segmentName(0)), seg0, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, r := reopen(t, s.Dir(), o)
	if len(r.Damage) != 0 || r.DroppedBytes != 0 || r.Chunks != 12 || r.Acked != 7 {
		t.Errorf("Recovery = %+v", r)
	}
	if got, want := segFiles(t, s.Dir()), []string{segmentName(6), segmentName(9)}; !slices.Equal(got, want) {
		t.Errorf("segments = %v, want %v", got, want)
	}
	checkState(t, s2, 12, 7)
}

func TestBadSegmentHeader(t *testing.T) {
	s := segmentsOf3(t, 4)
	modifyFile(t, filepath.Join(s.Dir(), segmentName(9)), func(b []byte) []byte {
		b[10] ^= 1 // first chunk number
		return b
	})
	s2, r := reopen(t, s.Dir(), Options{Sync: SyncNever})
	if r.Chunks != 9 || r.DroppedSegments != 1 || r.DroppedBytes != recordOffset(9, 12) || len(r.Damage) != 1 {
		t.Errorf("Recovery = %+v", r)
	}
	checkState(t, s2, 9, 4)
	appendRange(t, s2, 9, 10)
	checkChunks(t, s2, 4, 10)
}

// TestAckedDataLost: a power cut can persist an acknowledgement but not
// the chunk data before it. Nothing needs resending, numbering continues
// at the acknowledged position, and the hash covers what was acknowledged.
func TestAckedDataLost(t *testing.T) {
	tests := []struct {
		name       string
		damage     func([]byte) []byte
		wantDamage int
	}{
		{"truncated", func(b []byte) []byte { return b[:recordOffset(0, 3)] }, 1},
		{"corrupt acknowledged chunk", func(b []byte) []byte { b[recordOffset(0, 2)+recordHeaderSize] ^= 1; return b }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Sync: SyncNever}
			s := create(t, o)
			appendRange(t, s, 0, 10)
			ackRange(t, s, 0, 6)
			s.Close()
			modifyFile(t, filepath.Join(s.Dir(), segmentName(0)), tt.damage)

			s2, r := reopen(t, s.Dir(), o)
			if r.Chunks != 6 || r.Acked != 6 || r.Pending != 0 || len(r.Damage) != tt.wantDamage {
				t.Errorf("Recovery = %+v", r)
			}
			checkState(t, s2, 6, 6)
			appendRange(t, s2, 6, 9)
			checkChunks(t, s2, 6, 9)
			ackRange(t, s2, 6, 9)
			checkState(t, s2, 9, 9)
			s2.Close()
			s3, r := reopen(t, s.Dir(), o)
			if len(r.Damage) != 0 {
				t.Errorf("second Recovery = %+v", r)
			}
			checkState(t, s3, 9, 9)
		})
	}
}

// TestAckLostSegmentDeleted: a power cut can persist a segment's deletion
// but not the acknowledgements that allowed it. The position moves up to
// the oldest segment on disk, and the hash comes from its header.
func TestAckLostSegmentDeleted(t *testing.T) {
	o := Options{Sync: SyncNever, SegmentBytes: threePerSegment}
	s := create(t, o)
	appendRange(t, s, 0, 12)
	ackRange(t, s, 0, 2)
	state, err := os.ReadFile(filepath.Join(s.Dir(), stateFileName))
	if err != nil {
		t.Fatal(err)
	}
	ackRange(t, s, 0, 8)
	s.Close()
	if err := os.WriteFile(filepath.Join(s.Dir(), stateFileName), state, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, r := reopen(t, s.Dir(), o)
	if r.Acked != 6 || r.AckAdvanced != 4 || r.Chunks != 12 || len(r.Damage) != 1 {
		t.Errorf("Recovery = %+v; want Acked 6, AckAdvanced 4", r)
	}
	checkState(t, s2, 12, 6)
	checkChunks(t, s2, 6, 12)
	ackRange(t, s2, 6, 12)
	checkState(t, s2, 12, 12)
}

// TestStateSlots corrupts the state file's slots.
func TestStateSlots(t *testing.T) {
	tests := []struct {
		name       string
		damage     func(path string) error
		wantAcked  int64
		wantDamage int
	}{
		{"newest slot torn: the other one is used", func(path string) error {
			return damageSlot(path, func(b []byte) { b[20] ^= 1 }, true)
		}, 4, 0},
		{"newest slot zeroed", func(path string) error {
			return damageSlot(path, func(b []byte) { clear(b[:stateSlotSize]) }, true)
		}, 4, 0},
		{"older slot torn: no effect", func(path string) error {
			return damageSlot(path, func(b []byte) { b[100] ^= 1 }, false)
		}, 5, 0},
		{"both slots bad: resend everything", func(path string) error {
			return os.WriteFile(path, make([]byte, 2*stateSlotStride), 0o600)
		}, 0, 1},
		{"state file missing", os.Remove, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Sync: SyncNever}
			s := create(t, o)
			appendRange(t, s, 0, 10)
			ackRange(t, s, 0, 5)
			s.Close()
			if err := tt.damage(filepath.Join(s.Dir(), stateFileName)); err != nil {
				t.Fatal(err)
			}
			s2, r := reopen(t, s.Dir(), o)
			if r.Acked != tt.wantAcked || len(r.Damage) != tt.wantDamage || r.Chunks != 10 {
				t.Errorf("Recovery = %+v; want Acked %d and %d damage entries", r, tt.wantAcked, tt.wantDamage)
			}
			checkState(t, s2, 10, int(tt.wantAcked))
			checkChunks(t, s2, int(tt.wantAcked), 10)
			ackRange(t, s2, int(tt.wantAcked), 10)
			s2.Close()
			s3, r := reopen(t, s.Dir(), o)
			if len(r.Damage) != 0 {
				t.Errorf("second Recovery = %+v", r)
			}
			checkState(t, s3, 10, 10)
		})
	}
}

// damageSlot applies f to the newest (or the older) valid slot of the
// state file at path.
func damageSlot(path string, f func([]byte), newest bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s0, err0 := decodeStateSlot(b[:stateSlotSize])
	s1, err1 := decodeStateSlot(b[stateSlotStride:])
	if err0 != nil || err1 != nil {
		return os.ErrInvalid
	}
	i := 0
	if (s1.seq > s0.seq) == newest {
		i = 1
	}
	f(b[i*stateSlotStride:])
	return os.WriteFile(path, b, 0o600)
}

// TestCrashDuringCreate: a Create cut short after the meta file recovers
// as an empty spool.
func TestCrashDuringCreate(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	s.Close()
	for _, name := range append(segFiles(t, s.Dir()), stateFileName) {
		if err := os.Remove(filepath.Join(s.Dir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	s2, r := reopen(t, s.Dir(), Options{Sync: SyncNever})
	if r.Chunks != 0 || r.Acked != 0 {
		t.Errorf("Recovery = %+v", r)
	}
	appendRange(t, s2, 0, 3)
	checkState(t, s2, 3, 0)
}
