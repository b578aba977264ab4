package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// Ack records that chunk no was delivered. Acknowledgements are in order:
// no must be Acked() (an already acknowledged chunk is accepted and
// ignored). The new position is written to the state file before Ack
// returns (fsynced under SyncAlways), and segments whose chunks are all
// acknowledged are deleted. Ack reads the chunk back once to carry the
// running SHA-256 of the acknowledged chunks in the state file. It may
// wrap ErrNotFound (no >= Next), ErrOutOfOrder, ErrClosed, ErrCorrupt or
// an I/O error.
func (s *Spool) Ack(no int64) error {
	if err := s.ack(no); err != nil {
		return fmt.Errorf("acknowledging chunk %d in spool %s: %w", no, s.dir, err)
	}
	return nil
}

func (s *Spool) ack(no int64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()

	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.failed != nil:
		s.mu.Unlock()
		return s.failed
	case no < s.acked:
		s.mu.Unlock()
		return nil
	case no >= s.next:
		s.mu.Unlock()
		return ErrNotFound
	case no > s.acked:
		s.mu.Unlock()
		return fmt.Errorf("next to acknowledge is %d: %w", s.acked, ErrOutOfOrder)
	}
	seg, e, err := s.locate(no)
	prev := s.ackHash
	var next []byte
	if len(s.appendHashes) > 0 && s.appendHashFrom == no {
		// Hashed when appended: no need to read the chunk back.
		next = s.appendHashes[0]
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if next == nil {
		if next, err = s.hashChunk(seg, e, no, prev); err != nil {
			return err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	st := s.stateSlot()
	st.acked, st.ackedBytes, st.hashState = no+1, s.ackedBytes+int64(e.n), next
	if err := s.writeState(st, false); err != nil {
		return err
	}
	s.acked, s.ackedBytes, s.ackHash = st.acked, st.ackedBytes, st.hashState
	if len(s.appendHashes) > 0 && s.appendHashFrom == no {
		s.appendHashes[0] = nil
		s.appendHashes = s.appendHashes[1:]
		s.appendHashFrom++
	}
	s.dropAcked()
	return nil
}

// hashChunk reads chunk no back and returns the SHA-256 state prev extended
// with it: for chunks recovered by Open, whose running state after each one
// is not known. Only Ack deletes segments and ackMu is held, so the chunk's
// segment stays; a concurrent Close may still close it.
func (s *Spool) hashChunk(seg *segment, e entry, no int64, prev []byte) ([]byte, error) {
	data, err := readRecord(seg.f, int64(e.off), e.n, no, nil)
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	h, err := restoreHash(prev)
	if err != nil {
		return nil, err
	}
	h.Write(data)
	return hashState(h)
}

// dropAcked deletes the segments, other than the last, whose chunks are
// all acknowledged, and forgets their index entries. A segment that cannot
// be deleted is kept and tried again on the next acknowledgement; Open
// deletes it at the latest. Callers hold s.mu.
func (s *Spool) dropAcked() {
	n := 0
	for n+1 < len(s.segs) && s.segs[n+1].first <= s.acked {
		seg := s.segs[n]
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			break
		}
		_ = seg.f.Close()
		n++
	}
	if n == 0 {
		return
	}
	s.segs = slices.Delete(s.segs, 0, n)
	first := s.segs[0].first
	s.index = slices.Clone(s.index[first-s.base:])
	s.base = first
}
