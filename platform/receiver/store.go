package receiver

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Result says what Submit did with a message.
type Result string

// Results of Submit.
const (
	// Accepted: the message was new and is now durable.
	Accepted Result = "accepted"
	// Duplicate: the message repeats one already acknowledged (same
	// start, same chunk bytes, or a finished after the first); nothing was
	// written.
	Duplicate Result = "duplicate"
)

// recLen is the size of one index record: offset u64, length u32, SHA-256
// of the chunk's bytes, all big-endian.
const recLen = 8 + 4 + sha256.Size

type record struct {
	off int64
	n   int64
	sum [sha256.Size]byte
}

func (r record) encode() []byte {
	b := make([]byte, recLen)
	binary.BigEndian.PutUint64(b, uint64(r.off))
	binary.BigEndian.PutUint32(b[8:], uint32(r.n))
	copy(b[12:], r.sum[:])
	return b
}

func decodeRecord(b []byte) record {
	var r record
	r.off = int64(binary.BigEndian.Uint64(b))
	r.n = int64(binary.BigEndian.Uint32(b[8:]))
	copy(r.sum[:], b[12:])
	return r
}

// DefaultMaxOpenTraces is how many traces' files a receiver keeps open
// when Options.MaxOpenTraces is 0. A trace holds two descriptors (.out and
// .idx) from its start to its finished message; beyond this many, the
// least recently used idle traces are closed and reopened at their next
// message, so any number of unfinished traces can be received with at most
// 2*DefaultMaxOpenTraces descriptors for them, plus two for each trace with
// a request in progress.
const DefaultMaxOpenTraces = 64

// trace is the receiver's state of one trace. Everything in it is derived
// from the files on disk (load), so a restarted receiver carries on where
// the killed one stopped.
type trace struct {
	// Guarded by store.mu.
	refs int           // requests holding or waiting for mu
	elem *list.Element // t's place in store.open while its files are open

	mu       sync.Mutex
	id       string
	loaded   bool
	started  bool
	finished bool
	out, idx *os.File // open between start and finished, unless evicted
	outID    fileID   // the files out and idx were, checked when reopened
	idxID    fileID
	next     int64 // the next chunk number expected
	size     int64 // bytes in .out
}

// store is the directory of received traces.
type store struct {
	dir     *os.File // every file is opened relative to it
	maxOpen int

	mu     sync.Mutex
	traces map[string]*trace
	open   list.List // traces with open files, most recently used first
}

func newStore(dir *os.File, maxOpen int) *store {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenTraces
	}
	return &store{dir: dir, maxOpen: maxOpen, traces: make(map[string]*trace)}
}

// get returns the state of trace id, locked, loading it from disk at first
// use and reopening its files when they were closed for others. The caller
// hands it back with release.
func (s *store) get(id string) (*trace, error) {
	s.mu.Lock()
	t, ok := s.traces[id]
	if !ok {
		t = &trace{id: id}
		s.traces[id] = t
	}
	t.refs++
	s.mu.Unlock()
	t.mu.Lock()
	var err error
	switch {
	case !t.loaded:
		if err = s.load(t); err == nil {
			t.loaded = true
		}
	case t.started && !t.finished && t.out == nil:
		err = s.reopen(t)
	}
	if err != nil {
		s.release(t)
		return nil, fmt.Errorf("loading trace %s: %w", id, err)
	}
	return t, nil
}

// release unlocks t, got from get, records whether its files are open and
// closes those of the least recently used idle traces beyond maxOpen.
//
// Lock order: t.mu, then s.mu; nobody waits for a trace's mu while holding
// s.mu. A trace with no refs is held by nobody, so its files can be closed
// under s.mu alone.
func (s *store) release(t *trace) {
	s.mu.Lock()
	switch {
	case t.out != nil && t.elem == nil:
		t.elem = s.open.PushFront(t)
	case t.out != nil:
		s.open.MoveToFront(t.elem)
	case t.elem != nil:
		s.open.Remove(t.elem)
		t.elem = nil
	}
	for e := s.open.Back(); e != nil && s.open.Len() > s.maxOpen; {
		prev := e.Prev()
		if v := e.Value.(*trace); v.refs == 0 {
			v.closeFiles()
			s.open.Remove(e)
			v.elem = nil
		}
		e = prev
	}
	t.refs--
	s.mu.Unlock()
	t.mu.Unlock()
}

func (t *trace) closeFiles() {
	if t.out != nil {
		t.out.Close()
		t.out = nil
	}
	if t.idx != nil {
		t.idx.Close()
		t.idx = nil
	}
}

// load reads trace t's files: a finished trace has its .json; a started
// one its .idx (created after the .out by start, so it marks the trace
// started), cut to whole records, and its .out, cut to the bytes the
// records cover (a torn tail of either is what a kill -9 between the two
// writes leaves).
func (s *store) load(t *trace) error {
	t.started, t.finished, t.next, t.size = false, false, 0, 0
	if ok, err := statAt(s.dir, t.id+".json"); err != nil || ok {
		t.started, t.finished = ok, ok
		if err != nil {
			return err
		}
		return s.loadFinished(t)
	}
	if ok, err := statAt(s.dir, t.id+".idx"); err != nil || !ok {
		return err
	}
	t.started = true
	idx, idxID, _, err := openAt(s.dir, t.id+".idx", unix.O_RDWR)
	if err != nil {
		return err
	}
	out, outID, _, err := openAt(s.dir, t.id+".out", unix.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) {
		// Its bytes are gone: repair drops their records, and the
		// sender's resends write them again.
		out, outID, err = createAt(s.dir, t.id+".out")
	}
	if err != nil {
		idx.Close()
		return err
	}
	if err := repair(idx, out, &t.next, &t.size); err != nil {
		idx.Close()
		out.Close()
		return err
	}
	t.idx, t.out, t.idxID, t.outID = idx, out, idxID, outID
	return nil
}

// loadFinished reads the chunk count and size of a finished trace from its
// .idx, read-only: a finished trace's files are never written again (and
// its .out may have been taken away).
func (s *store) loadFinished(t *trace) error {
	idx, _, size, err := openAt(s.dir, t.id+".idx", unix.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer idx.Close()
	if t.next = size / recLen; t.next > 0 {
		buf := make([]byte, recLen)
		if _, err := idx.ReadAt(buf, (t.next-1)*recLen); err != nil {
			return fmt.Errorf("reading index: %w", err)
		}
		r := decodeRecord(buf)
		t.size = r.off + r.n
	}
	return nil
}

// reopen opens the files of a started trace closed by release, checking
// they are still the files it had: its state (next, size) stayed in
// memory, and writes carry on at its end.
func (s *store) reopen(t *trace) error {
	idx, idxID, _, err := openAt(s.dir, t.id+".idx", unix.O_RDWR)
	if err != nil {
		return fmt.Errorf("reopening index: %w", err)
	}
	out, outID, _, err := openAt(s.dir, t.id+".out", unix.O_RDWR)
	if err != nil {
		idx.Close()
		return fmt.Errorf("reopening output: %w", err)
	}
	if idxID != t.idxID || outID != t.outID {
		idx.Close()
		out.Close()
		return unsafeFile(t.id+".out", "it or %s.idx was replaced while the receiver had them closed", t.id)
	}
	t.idx, t.out = idx, out
	return nil
}

// repair cuts idx to whole records whose bytes .out holds, and .out to the
// bytes those records cover; it sets next and size. Both are files openAt
// checked (regular, ours, one link), and the .idx proves start created them.
func repair(idx, out *os.File, next, size *int64) error {
	ist, err := idx.Stat()
	if err != nil {
		return err
	}
	ost, err := out.Stat()
	if err != nil {
		return err
	}
	n := ist.Size() / recLen
	var end int64
	buf := make([]byte, recLen)
	for ; n > 0; n-- {
		if _, err := idx.ReadAt(buf, (n-1)*recLen); err != nil {
			return fmt.Errorf("reading index: %w", err)
		}
		r := decodeRecord(buf)
		if end = r.off + r.n; end <= ost.Size() {
			break
		}
		end = 0
	}
	if ist.Size() != n*recLen {
		if err := truncSync(idx, n*recLen); err != nil {
			return fmt.Errorf("cutting the index's torn tail: %w", err)
		}
	}
	if ost.Size() != end {
		if err := truncSync(out, end); err != nil {
			return fmt.Errorf("cutting the output's unacknowledged tail: %w", err)
		}
	}
	*next, *size = n, end
	return nil
}

func truncSync(f *os.File, n int64) error {
	if err := f.Truncate(n); err != nil {
		return err
	}
	return f.Sync()
}

// submit applies one message to its trace. Errors wrap ErrProtocol for a
// message out of order or contradicting what was acknowledged, ErrUnsafeFile
// for a trace file the receiver refuses to touch; other errors are failures
// of the disk.
func (s *store) submit(m Message) (Result, error) {
	t, err := s.get(m.ID)
	if err != nil {
		return "", err
	}
	defer s.release(t)
	switch m.Kind {
	case Start:
		if t.started {
			// A start again (the sender's resend, or its restart) is the
			// same trace: nothing on disk is recreated or truncated.
			return Duplicate, nil
		}
		return Accepted, s.start(t)
	case Chunk:
		return s.chunk(t, m)
	case Finished:
		return s.finish(t, m)
	}
	return "", invalid("unknown message kind")
}

// start creates the trace's .out, then its .idx, both new (createAt): the
// .idx, created last, marks the trace started on disk.
func (s *store) start(t *trace) error {
	out, outID, err := createAt(s.dir, t.id+".out")
	if err != nil {
		return fmt.Errorf("creating output file: %w", err)
	}
	idx, idxID, err := createAt(s.dir, t.id+".idx")
	if err != nil {
		out.Close()
		return fmt.Errorf("creating index file: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		idx.Close()
		return fmt.Errorf("syncing output file: %w", err)
	}
	if err := s.dir.Sync(); err != nil {
		out.Close()
		idx.Close()
		return fmt.Errorf("syncing directory: %w", err)
	}
	t.out, t.idx, t.outID, t.idxID, t.started = out, idx, outID, idxID, true
	return nil
}

func (s *store) chunk(t *trace, m Message) (Result, error) {
	if !t.started {
		return "", protocol(fmt.Sprintf("chunk %d before the trace's start message", m.No))
	}
	if m.No > t.next {
		return "", protocol(fmt.Sprintf("chunk %d arrived but chunk %d is the next one: no gaps", m.No, t.next))
	}
	sum := sha256.Sum256(m.Data)
	if m.No < t.next {
		r, err := s.readRecord(t, m.No)
		if err != nil {
			return "", err
		}
		if r.n != int64(len(m.Data)) || r.sum != sum {
			return "", protocol(fmt.Sprintf("chunk %d resent with other bytes than the ones acknowledged (%d bytes then, %d now)", m.No, r.n, len(m.Data)))
		}
		return Duplicate, nil
	}
	if t.finished {
		return "", protocol(fmt.Sprintf("chunk %d after the trace's finished message", m.No))
	}
	if _, err := t.out.WriteAt(m.Data, t.size); err != nil {
		return "", fmt.Errorf("writing output: %w", err)
	}
	if err := t.out.Sync(); err != nil {
		return "", fmt.Errorf("syncing output: %w", err)
	}
	r := record{off: t.size, n: int64(len(m.Data)), sum: sum}
	if _, err := t.idx.WriteAt(r.encode(), t.next*recLen); err != nil {
		return "", fmt.Errorf("writing index: %w", err)
	}
	if err := t.idx.Sync(); err != nil {
		return "", fmt.Errorf("syncing index: %w", err)
	}
	t.next++
	t.size += r.n
	return Accepted, nil
}

func (s *store) readRecord(t *trace, no int64) (record, error) {
	f := t.idx
	if f == nil {
		var err error
		if f, _, _, err = openAt(s.dir, t.id+".idx", unix.O_RDONLY); err != nil {
			return record{}, fmt.Errorf("opening index: %w", err)
		}
		defer f.Close()
	}
	buf := make([]byte, recLen)
	if _, err := f.ReadAt(buf, no*recLen); err != nil {
		return record{}, fmt.Errorf("reading index: %w", err)
	}
	return decodeRecord(buf), nil
}

func (s *store) finish(t *trace, m Message) (Result, error) {
	if !t.started {
		return "", protocol("finished message before the trace's start message")
	}
	if t.finished {
		return Duplicate, nil // the first finished message is kept
	}
	if m.HasChunks && m.Chunks != t.next {
		return "", protocol(fmt.Sprintf("finished message says %d chunks, %d were received", m.Chunks, t.next))
	}
	if m.HasBytes && m.Bytes != t.size {
		return "", protocol(fmt.Sprintf("finished message says %d bytes, %d were received", m.Bytes, t.size))
	}
	if m.SHA256 != "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(t.out, 0, t.size)); err != nil {
			return "", fmt.Errorf("hashing output: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
			return "", protocol(fmt.Sprintf("finished message says sha256 %s, the received bytes hash to %s", m.SHA256, got))
		}
	}
	if err := writeFileAtomic(s.dir, t.id+".json", m.Raw); err != nil {
		return "", fmt.Errorf("writing finished message: %w", err)
	}
	t.finished = true
	t.closeFiles()
	return Accepted, nil
}

// close closes every open file. A trace is reloaded from disk at its next
// use.
func (s *store) close() {
	s.mu.Lock()
	ts := make([]*trace, 0, len(s.traces))
	for _, t := range s.traces {
		t.refs++
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		t.closeFiles()
		t.loaded = false
		s.release(t)
	}
}
