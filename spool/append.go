package spool

import (
	"fmt"
)

// Append stores data as the next chunk and returns its number. When it
// returns, the chunk is in the file (it survives the process being
// killed) and, under SyncAlways, on stable storage. It may wrap ErrClosed,
// ErrSealed, ErrFull, ErrTooLarge, or an I/O error (after a failed fsync,
// every later Append fails too).
func (s *Spool) Append(data []byte) (int64, error) {
	if len(data) > MaxChunkBytes {
		return 0, fmt.Errorf("appending to spool %s: %d bytes: %w", s.dir, len(data), ErrTooLarge)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	no, err := s.append(data)
	if err != nil {
		return 0, fmt.Errorf("appending chunk %d to spool %s: %w", s.next, s.dir, err)
	}
	return no, nil
}

func (s *Spool) append(data []byte) (int64, error) {
	switch {
	case s.closed:
		return 0, ErrClosed
	case s.failed != nil:
		return 0, s.failed
	case s.sealed:
		return 0, ErrSealed
	case s.opts.MaxBytes > 0 && s.bytes-s.ackedBytes+int64(len(data)) > s.opts.MaxBytes:
		return 0, ErrFull
	}
	size := int64(recordHeaderSize + len(data))
	seg := s.segs[len(s.segs)-1]
	if seg.size > segmentHeaderSize && seg.size+size > s.opts.SegmentBytes {
		var err error
		if seg, err = s.rotate(); err != nil {
			return 0, err
		}
	}
	no := s.next
	putRecordHeader(s.hdr[:], no, data)
	_, err := seg.f.WriteAt(s.hdr[:], seg.size)
	if err == nil {
		_, err = seg.f.WriteAt(data, seg.size+recordHeaderSize)
	}
	if err != nil {
		// Best effort: cut the partial record so that it does not
		// linger behind the next one.
		_ = seg.f.Truncate(seg.size)
		return 0, err
	}
	switch s.opts.Sync {
	case SyncAlways:
		if err := seg.f.Sync(); err != nil {
			return 0, s.fail(fmt.Errorf("syncing segment: %w", err))
		}
	case SyncInterval:
		s.dataDirty = true
	}
	s.index = append(s.index, entry{off: uint32(seg.size), n: uint32(len(data))})
	seg.size += size
	s.hash.Write(data)
	if state, err := hashState(s.hash); err == nil {
		if len(s.appendHashes) == 0 {
			s.appendHashFrom = s.next
		}
		s.appendHashes = append(s.appendHashes, state)
	}
	s.next++
	s.bytes += int64(len(data))
	s.wake()
	return no, nil
}

// rotate closes the books on the last segment (fsyncing it unless
// SyncNever) and starts a new one at the next chunk. The old segment stays
// open for reading until its chunks are acknowledged. Callers hold s.mu.
func (s *Spool) rotate() (*segment, error) {
	sync := s.opts.Sync != SyncNever
	if sync {
		if err := s.segs[len(s.segs)-1].f.Sync(); err != nil {
			return nil, s.fail(fmt.Errorf("syncing segment: %w", err))
		}
	}
	state, err := hashState(s.hash)
	if err != nil {
		return nil, err
	}
	seg, err := createSegment(s.dir, segmentHeader{first: s.next, baseBytes: s.bytes, hashState: state}, sync)
	if err != nil {
		return nil, err
	}
	s.segs = append(s.segs, seg)
	s.dataDirty = false
	s.dropAcked()
	return seg, nil
}

// Seal records that no chunk will follow: Append fails with ErrSealed from
// now on, also after a restart, and Wait past the last chunk returns
// io.EOF. Unless SyncNever, the chunks and the flag are fsynced before it
// returns. Sealing twice does nothing. It may wrap ErrClosed.
func (s *Spool) Seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.seal(); err != nil {
		return fmt.Errorf("sealing spool %s: %w", s.dir, err)
	}
	return nil
}

func (s *Spool) seal() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.sealed:
		return nil
	case s.failed != nil:
		return s.failed
	}
	sync := s.opts.Sync != SyncNever
	if sync {
		if err := s.segs[len(s.segs)-1].f.Sync(); err != nil {
			return s.fail(fmt.Errorf("syncing segment: %w", err))
		}
		s.dataDirty = false
	}
	st := s.stateSlot()
	st.sealed = true
	if err := s.writeState(st, sync); err != nil {
		return err
	}
	s.sealed = true
	s.wake()
	return nil
}

// stateSlot returns the position to store in the state file. Callers
// hold s.mu.
func (s *Spool) stateSlot() stateSlot {
	return stateSlot{acked: s.acked, ackedBytes: s.ackedBytes, sealed: s.sealed, hashState: s.ackHash}
}

// writeState stores st in the state file, fsyncing it under SyncAlways or
// when sync is set (never under SyncNever). Callers hold s.mu.
func (s *Spool) writeState(st stateSlot, sync bool) error {
	sync = s.opts.Sync == SyncAlways || (sync && s.opts.Sync != SyncNever)
	written, err := s.state.write(st, sync)
	switch {
	case err != nil && written:
		return s.fail(err)
	case err != nil:
		return err
	}
	if s.opts.Sync == SyncInterval && !sync {
		s.stateDirty = true
	}
	return nil
}
