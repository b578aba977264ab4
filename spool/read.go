package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Read returns chunk no's bytes, read from its segment file and verified
// against the record's checksum. Chunks below Acked may already be gone.
// It may wrap ErrNotFound, ErrCorrupt, ErrClosed or an I/O error.
func (s *Spool) Read(no int64) ([]byte, error) {
	return s.ReadInto(nil, no)
}

// ReadInto is Read into buf's storage when its capacity holds the chunk
// plus RecordOverhead bytes, so that a sender reuses one buffer for every
// chunk (pass the same buf each time, not the result); the result is valid
// until buf is used again. A smaller buf is not used.
func (s *Spool) ReadInto(buf []byte, no int64) ([]byte, error) {
	s.mu.Lock()
	seg, e, err := s.locate(no)
	s.mu.Unlock()
	if err == nil {
		var data []byte
		if data, err = readRecord(seg.f, int64(e.off), e.n, no, buf); err == nil {
			return data, nil
		}
		if errors.Is(err, os.ErrClosed) {
			// Closed or deleted while we read: say which.
			s.mu.Lock()
			_, _, err = s.locate(no)
			s.mu.Unlock()
			if err == nil {
				err = ErrNotFound
			}
		}
	}
	return nil, fmt.Errorf("reading chunk %d from spool %s: %w", no, s.dir, err)
}

// RecordOverhead is how many bytes beyond a chunk's length ReadInto needs
// in its buffer: the record header, read and checked with the data.
const RecordOverhead = recordHeaderSize

// locate finds chunk no's segment and index entry. Callers hold s.mu.
func (s *Spool) locate(no int64) (*segment, entry, error) {
	switch {
	case s.closed:
		return nil, entry{}, ErrClosed
	case no < s.base || no >= s.next:
		return nil, entry{}, ErrNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > no }) - 1
	return s.segs[i], s.index[no-s.base], nil
}

// Wait blocks until chunk no exists and returns nil. It returns io.EOF
// when the spool is sealed and no is at or past Next, ErrClosed when the
// spool is closed, and ctx.Err() when ctx is done. A sender loops
// Wait(ctx, Acked()), Read, submit, Ack.
func (s *Spool) Wait(ctx context.Context, no int64) error {
	for {
		s.mu.Lock()
		closed, have, sealed, ch := s.closed, no < s.next, s.sealed, s.notify
		s.mu.Unlock()
		switch {
		case closed:
			return fmt.Errorf("waiting for chunk %d in spool %s: %w", no, s.dir, ErrClosed)
		case have:
			return nil
		case sealed:
			return io.EOF
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
