package spool

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Spool is one trace's durable chunk store. Its methods are safe for
// concurrent use; the intended pattern is one appending goroutine and one
// sending goroutine that reads, waits and acknowledges.
type Spool struct {
	dir  string
	opts Options

	ackMu  sync.Mutex // serializes Ack; held while a chunk is read back and hashed
	metaMu sync.Mutex // serializes SetMeta

	mu         sync.Mutex
	meta       []byte
	closed     bool
	failed     error // sticky fsync failure: durability is unknown from then on
	sealed     bool
	segs       []*segment // oldest first; the last one is appended to
	index      []entry    // chunk base+i is index[i]
	base       int64      // first chunk still on disk (segs[0].first)
	next       int64      // chunks appended
	bytes      int64      // chunk bytes appended
	hash       hash.Hash  // SHA-256 over all chunks appended
	acked      int64      // chunks acknowledged
	ackedBytes int64      // their bytes
	ackHash    []byte     // marshalled SHA-256 state over the acknowledged chunks
	// appendHashes holds, for the chunks appended by this Spool and not yet
	// acknowledged, the marshalled SHA-256 state after each one (chunk
	// appendHashFrom+i is appendHashes[i]), so that Ack need not read a
	// chunk back to hash it. Chunks recovered by Open have none.
	appendHashes   [][]byte
	appendHashFrom int64
	state          *stateFile
	dataDirty      bool          // appended since the last fsync (SyncInterval)
	stateDirty     bool          // state written since the last fsync (SyncInterval)
	notify         chan struct{} // closed and replaced on every Append, Seal and Close
	hdr            [recordHeaderSize]byte

	stop chan struct{} // closed by Close to stop the flusher
	done chan struct{} // closed by the flusher when it returns
}

// Create makes a new, empty spool in dir, which must not exist or be
// empty; it is created with mode 0700. meta is the caller's opaque
// description of the run, stored atomically; Meta returns it after Open.
func Create(dir string, meta []byte, o Options) (*Spool, error) {
	s, err := createSpool(dir, meta, o)
	if err != nil {
		return nil, fmt.Errorf("creating spool %s: %w", dir, err)
	}
	return s, nil
}

func createSpool(dir string, meta []byte, o Options) (*Spool, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("directory not empty: %w", fs.ErrExist)
	}
	// The meta file comes first: a crash later in Create leaves a spool
	// that Open recovers as empty.
	if err := writeFileAtomic(dir, metaFile, meta); err != nil {
		return nil, fmt.Errorf("writing meta: %w", err)
	}
	st, _, _, _, err := openStateFile(dir)
	if err != nil {
		return nil, err
	}
	sync := o.Sync != SyncNever
	empty := emptyHashState()
	if _, err := st.write(stateSlot{hashState: empty}, sync); err != nil {
		_ = st.f.Close()
		return nil, err
	}
	seg, err := createSegment(dir, segmentHeader{hashState: empty}, sync)
	if err != nil {
		_ = st.f.Close()
		return nil, err
	}
	s := &Spool{
		dir:     dir,
		opts:    o,
		meta:    bytes.Clone(meta),
		segs:    []*segment{seg},
		hash:    sha256.New(),
		ackHash: empty,
		state:   st,
	}
	s.start()
	return s, nil
}

// start finishes construction: the wake-up channel and, for
// SyncInterval, the flusher goroutine that Close stops.
func (s *Spool) start() {
	s.notify = make(chan struct{})
	if s.opts.Sync == SyncInterval {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.flushLoop(s.stop, s.done)
	}
}

// List returns the directories under root, each a spool (or the remains of
// a Create that crashed, which Open refuses with ErrCorrupt), sorted by
// name. A missing root holds no spools.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing spools in %s: %w", root, err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	return dirs, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Meta returns a copy of the caller's bytes given to Create or SetMeta.
func (s *Spool) Meta() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.meta)
}

// SetMeta replaces the meta bytes atomically (write a temporary file,
// fsync, rename, fsync the directory), whatever the sync policy. It may
// wrap ErrClosed.
func (s *Spool) SetMeta(meta []byte) error {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("setting meta of spool %s: %w", s.dir, ErrClosed)
	}
	if err := writeFileAtomic(s.dir, metaFile, meta); err != nil {
		return fmt.Errorf("setting meta of spool %s: %w", s.dir, err)
	}
	s.mu.Lock()
	s.meta = bytes.Clone(meta)
	s.mu.Unlock()
	return nil
}

// Next returns the number of chunks appended so far, which is the number
// the next Append gets.
func (s *Spool) Next() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Acked returns the number of chunks acknowledged, which is the number of
// the next chunk to send.
func (s *Spool) Acked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Bytes returns the chunk bytes appended so far.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// AckedBytes returns the bytes of the acknowledged chunks.
func (s *Spool) AckedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackedBytes
}

// Pending returns the bytes of the unacknowledged chunks, the amount
// Options.MaxBytes caps.
func (s *Spool) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes - s.ackedBytes
}

// Sealed reports whether Seal was called, in this process or before a
// restart.
func (s *Spool) Sealed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealed
}

// SHA256 returns the SHA-256 of all chunks appended so far, concatenated
// in order, including chunks whose segments were deleted and chunks
// appended before a restart.
func (s *Spool) SHA256() [sha256.Size]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum [sha256.Size]byte
	s.hash.Sum(sum[:0])
	return sum
}

// wake releases every Wait in progress. Callers hold s.mu.
func (s *Spool) wake() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// fail records a failed fsync. From then on the spool cannot tell what is
// durable, so every write refuses to go on. Callers hold s.mu.
func (s *Spool) fail(err error) error {
	if s.failed == nil {
		s.failed = err
	}
	return err
}

// Close stops the flusher, fsyncs what was written (unless SyncNever) and
// closes the files. Waits in progress return ErrClosed. It returns the
// spool's first fsync failure, if any. Closing again does nothing.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wake()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.failed != nil {
		errs = append(errs, s.failed)
	} else if s.opts.Sync != SyncNever {
		if err := s.segs[len(s.segs)-1].f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("syncing segment: %w", err))
		}
		if err := s.state.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("syncing %s: %w", stateFileName, err))
		}
	}
	for _, seg := range s.segs {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.state.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing spool %s: %w", s.dir, err)
	}
	return nil
}

// Remove closes the spool and deletes its directory, for when everything
// was delivered. Close errors are ignored: the data is going away.
func (s *Spool) Remove() error {
	_ = s.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("removing spool %s: %w", s.dir, err)
	}
	if s.opts.Sync != SyncNever {
		if err := syncDir(filepath.Dir(s.dir)); err != nil {
			return fmt.Errorf("removing spool %s: %w", s.dir, err)
		}
	}
	return nil
}
