package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The staging file keeps the output a Writer holds but has not yet cut
// into a chunk (at most about one chunk plus one write, waiting for a
// newline or a flush). Every Write goes to it before it returns, so a crash
// loses nothing written: the staged bytes past the spool's last chunk
// become the next Writer's first bytes, or (RecoverStaged) the spool's last
// chunks.
//
// Format: the 8-byte magic stageMagic, then the stream offset of the first
// staged byte (uint64 little endian), then the bytes. The file is appended
// to; when it grows past stageCompactAt it is replaced (write and rename)
// by one holding only the bytes not yet in a chunk.
const (
	stageName      = "staged"
	stageMagic     = "LESTAGE1"
	stageHeader    = 16
	stageCompactAt = 8 << 20
)

type stage struct {
	dir  string
	f    *os.File
	size int64 // staged bytes in the file, after the header
}

// createStage replaces dir's staging file with one whose bytes, starting at
// stream offset base, are pending.
func createStage(dir string, base int64, pending []byte) (*stage, error) {
	path := filepath.Join(dir, stageName)
	tmp := path + ".tmp"
	hdr := make([]byte, stageHeader, stageHeader+len(pending))
	copy(hdr, stageMagic)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(base))
	if err := os.WriteFile(tmp, append(hdr, pending...), 0o600); err != nil {
		return nil, fmt.Errorf("writing staging file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("replacing staging file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("opening staging file: %w", err)
	}
	return &stage{dir: dir, f: f, size: int64(len(pending))}, nil
}

// write stages bytes just read.
func (st *stage) write(p []byte) error {
	n, err := st.f.Write(p)
	st.size += int64(n)
	return err
}

// compact replaces the file when it has grown large: committed is the stream
// offset where pending (the bytes not yet in a chunk) starts.
func (st *stage) compact(committed int64, pending []byte) (*stage, error) {
	if st.size < stageCompactAt {
		return st, nil
	}
	next, err := createStage(st.dir, committed, pending)
	if err != nil {
		return st, err
	}
	st.f.Close()
	return next, nil
}

// close closes the file, leaving it for a restarted pump or the next start.
func (st *stage) close() { st.f.Close() }

// remove deletes the staging file: everything is in chunks, or dropped.
func (st *stage) remove() error {
	st.f.Close()
	err := os.Remove(filepath.Join(st.dir, stageName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// removeStage deletes dir's staging file, if any.
func removeStage(dir string) error {
	err := os.Remove(filepath.Join(dir, stageName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// readStaged returns the bytes staged in dir from stream offset committed
// on: the output a crashed endpoint had read but not cut into a chunk. No
// file means nothing was staged.
func readStaged(dir string, committed int64) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, stageName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading staging file: %w", err)
	}
	if len(b) < stageHeader || !bytes.Equal(b[:8], []byte(stageMagic)) {
		return nil, fmt.Errorf("staging file has no valid header (%d bytes)", len(b))
	}
	base := int64(binary.LittleEndian.Uint64(b[8:16]))
	data := b[stageHeader:]
	off := committed - base
	if off < 0 || off > int64(len(data)) {
		return nil, fmt.Errorf("staging file covers bytes %d..%d, the spool ends at %d", base, base+int64(len(data)), committed)
	}
	return data[off:], nil
}
