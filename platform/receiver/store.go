package receiver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
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

// trace is the receiver's state of one trace. Everything in it is derived
// from the files on disk (loadTrace), so a restarted receiver carries on
// where the killed one stopped.
type trace struct {
	mu       sync.Mutex
	id       string
	loaded   bool
	started  bool
	finished bool
	out, idx *os.File // open between start and finished
	next     int64    // the next chunk number expected
	size     int64    // bytes in .out
}

// store is the directory of received traces.
type store struct {
	dir string

	mu     sync.Mutex
	traces map[string]*trace
}

func (s *store) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// get returns the state of trace id, loading it from disk at first use.
func (s *store) get(id string) (*trace, error) {
	s.mu.Lock()
	t, ok := s.traces[id]
	if !ok {
		t = &trace{id: id}
		s.traces[id] = t
	}
	s.mu.Unlock()
	t.mu.Lock()
	if !t.loaded {
		if err := s.load(t); err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("loading trace %s: %w", id, err)
		}
		t.loaded = true
	}
	return t, nil // locked
}

// load reads trace t's files: a finished trace has its .json; a started
// one its .idx, cut to whole records, and its .out, cut to the bytes the
// records cover (a torn tail of either is what a kill -9 between the two
// writes leaves).
func (s *store) load(t *trace) error {
	if _, err := os.Stat(s.path(t.id, ".json")); err == nil {
		t.started, t.finished = true, true
		return s.loadIndex(t, false)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := os.Stat(s.path(t.id, ".idx")); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	t.started = true
	return s.loadIndex(t, true)
}

func (s *store) loadIndex(t *trace, open bool) error {
	idx, err := os.OpenFile(s.path(t.id, ".idx"), os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(s.path(t.id, ".out"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		idx.Close()
		return err
	}
	if err := repair(idx, out, &t.next, &t.size); err != nil {
		idx.Close()
		out.Close()
		return err
	}
	if !open {
		idx.Close()
		out.Close()
		return nil
	}
	t.idx, t.out = idx, out
	return nil
}

// repair cuts idx to whole records whose bytes .out holds, and .out to the
// bytes those records cover; it sets next and size.
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
// message out of order or contradicting what was acknowledged; other errors
// are failures of the disk.
func (s *store) submit(m Message) (Result, error) {
	t, err := s.get(m.ID)
	if err != nil {
		return "", err
	}
	defer t.mu.Unlock()
	switch m.Kind {
	case Start:
		if t.started {
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

func (s *store) start(t *trace) error {
	out, err := os.OpenFile(s.path(t.id, ".out"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating output file: %w", err)
	}
	idx, err := os.OpenFile(s.path(t.id, ".idx"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = out.Sync()
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		out.Close()
		if idx != nil {
			idx.Close()
		}
		return fmt.Errorf("creating index file: %w", err)
	}
	t.out, t.idx, t.started = out, idx, true
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
		if f, err = os.Open(s.path(t.id, ".idx")); err != nil {
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
	t.out.Close()
	t.idx.Close()
	t.out, t.idx = nil, nil
	return Accepted, nil
}

// writeFileAtomic writes dir/name through a temporary file, fsynced and
// renamed, then fsyncs dir: the file is either absent or complete.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// close closes every open file.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.traces {
		t.mu.Lock()
		if t.out != nil {
			t.out.Close()
			t.idx.Close()
			t.out, t.idx = nil, nil
		}
		t.loaded = false
		t.mu.Unlock()
	}
}
