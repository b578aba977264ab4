package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// stateFile holds the acknowledged position in two fixed slots, 4 KiB
// apart so that they never share a page. Each write goes to the slot that
// does not hold the newest valid copy, with the next sequence number, so a
// torn write leaves the previous copy intact; readers take the valid slot
// with the highest sequence number. No rename and no fsync per write are
// needed.
type stateFile struct {
	f    *os.File
	seq  uint64 // sequence number of the newest slot
	slot int    // index of the newest slot
}

// openStateFile opens (creating if missing) and locks dir's state file
// and reads its newest valid slot. ok is false when no slot is valid;
// problem then says why.
func openStateFile(dir string) (st *stateFile, cur stateSlot, ok bool, problem string, err error) {
	f, err := os.OpenFile(filepath.Join(dir, stateFileName), os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, cur, false, "", err
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return nil, cur, false, "", fmt.Errorf("locking %s: %w", stateFileName, err)
	}
	st = &stateFile{f: f, slot: 1} // with no valid slot, write slot 0 first
	var problems []error
	for i := range 2 {
		b := make([]byte, stateSlotSize)
		n, err := f.ReadAt(b, int64(i)*stateSlotStride)
		if err != nil && !errors.Is(err, io.EOF) {
			_ = f.Close()
			return nil, cur, false, "", fmt.Errorf("reading %s: %w", stateFileName, err)
		}
		if n < stateSlotSize {
			problems = append(problems, fmt.Errorf("slot %d: missing", i))
			continue
		}
		s, err := decodeStateSlot(b)
		if err != nil {
			problems = append(problems, fmt.Errorf("slot %d: %w", i, err))
			continue
		}
		if !ok || s.seq > cur.seq {
			cur, ok = s, true
			st.seq, st.slot = s.seq, i
		}
	}
	if !ok {
		problem = fmt.Sprintf("state: no valid slot (%v); acknowledged position reset", errors.Join(problems...))
	}
	return st, cur, ok, problem, nil
}

// write stores s (its seq is ignored) in the slot not holding the newest
// copy, and fsyncs when sync is set. A failed write leaves the newest
// copy as it was, so the next write goes to the same slot again. written
// reports whether the slot reached the file (an error with written set
// is an fsync failure).
func (st *stateFile) write(s stateSlot, sync bool) (written bool, err error) {
	s.seq = st.seq + 1
	b, err := encodeStateSlot(s)
	if err != nil {
		return false, err
	}
	slot := 1 - st.slot
	if _, err := st.f.WriteAt(b, int64(slot)*stateSlotStride); err != nil {
		return false, fmt.Errorf("writing %s: %w", stateFileName, err)
	}
	st.seq, st.slot = s.seq, slot
	if sync {
		if err := st.f.Sync(); err != nil {
			return true, fmt.Errorf("syncing %s: %w", stateFileName, err)
		}
	}
	return true, nil
}
