package spool

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// flushLoop is the SyncInterval flusher: every SyncEvery it fsyncs the
// segment and the state file if they were written since the last time.
// The Spool owns it: Close closes stop and waits for done.
func (s *Spool) flushLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.opts.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.flush()
		}
	}
}

// flush fsyncs without holding s.mu, so appends and reads go on meanwhile.
func (s *Spool) flush() {
	s.mu.Lock()
	if s.closed || s.failed != nil {
		s.mu.Unlock()
		return
	}
	var files []*os.File
	if s.dataDirty {
		files = append(files, s.segs[len(s.segs)-1].f)
		s.dataDirty = false
	}
	if s.stateDirty {
		files = append(files, s.state.f)
		s.stateDirty = false
	}
	s.mu.Unlock()
	for _, f := range files {
		// A segment rotated and deleted meanwhile was fsynced by rotate.
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			s.mu.Lock()
			s.fail(fmt.Errorf("syncing %s: %w", f.Name(), err))
			s.mu.Unlock()
		}
	}
}
