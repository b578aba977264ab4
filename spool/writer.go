package spool

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Writer cuts a stream of output into chunks and appends them to a Spool:
// a chunk holds at most the chunk size, ends at the last newline within it
// when there is one, and a short chunk is cut on Flush. What the Writer
// holds but has not cut yet is also kept in the spool directory's staging
// file (see stage.go), written before Write returns (after the chunks the
// Write made were appended, and only the bytes of it that none took):
// after a crash of the process, or a panic of the goroutine that wrote, a
// new Writer on the same spool (NewWriter) or a recovering Open's caller
// (RecoverStaged) takes those bytes over, so nothing written is lost.
//
// A Writer is used by one goroutine. After the spool refused a chunk
// (ErrFull, or a disk error) the Writer holds nothing and counts every
// further byte as dropped; each Write then returns that first error.
type Writer struct {
	sp       *Spool
	size     int
	st       *stage // nil when staging is off
	stageErr error
	buf      []byte
	oldest   time.Time // when the oldest byte in buf arrived
	failed   error
	dropped  int64
}

// NewWriter returns a Writer appending to sp in chunks of at most
// chunkSize bytes. Bytes an earlier Writer of sp staged but did not cut
// come first. If the staging file cannot be used, the Writer works without
// it and StagingErr says why. A damaged staging file is reported by
// StagingErr too; the bytes staged before the damage still come first.
func NewWriter(sp *Spool, chunkSize int) *Writer {
	w := &Writer{sp: sp, size: max(chunkSize, 1)}
	pending, err := readStaged(sp.Dir(), sp.Bytes())
	if err != nil {
		w.stageErr = err
	}
	w.buf = append([]byte(nil), pending...)
	w.oldest = time.Now()
	if w.st, err = createStage(sp.Dir(), sp.Bytes(), pending); err != nil {
		w.stageErr = errors.Join(w.stageErr, err)
	}
	return w
}

// StagingErr tells why the Writer keeps its uncut bytes in memory only (a
// crash would lose them), or nil.
func (w *Writer) StagingErr() error { return w.stageErr }

// Write appends every full chunk the held bytes and p make, then stages
// what is left of p. It returns the spool's error once the spool stops
// taking chunks; p is then counted as dropped.
func (w *Writer) Write(p []byte) (int, error) {
	copy(w.Space(len(p)), p)
	return len(p), w.Commit(len(p))
}

// Space returns n bytes of free space in the Writer's own buffer, for a
// reader that reads straight into it (no copy) and then calls Commit. The
// Writer holds fewer than the chunk size bytes between writes, so a buffer
// of chunk size plus n is allocated once.
func (w *Writer) Space(n int) []byte {
	if cap(w.buf)-len(w.buf) < n {
		nb := make([]byte, len(w.buf), max(len(w.buf), w.size)+n)
		copy(nb, w.buf)
		w.buf = nb
	}
	return w.buf[len(w.buf) : len(w.buf)+n]
}

// Commit takes the first n bytes of the last Space as written: like Write.
func (w *Writer) Commit(n int) error { return w.CommitSince(n, time.Now()) }

// CommitSince is Commit for bytes that may have arrived as early as since
// (a reader that let output gather in a pipe before reading it): the
// flush deadline of Oldest counts from since, not from now.
func (w *Writer) CommitSince(n int, since time.Time) error {
	_ = w.buf[len(w.buf) : len(w.buf)+n] // n beyond the last Space panics, as a slice would
	if w.failed != nil {
		w.dropped += int64(n)
		return w.failed
	}
	if len(w.buf) == 0 {
		w.oldest = since
	}
	w.buf = w.buf[:len(w.buf)+n]
	if err := w.emit(false, since); err != nil {
		return err
	}
	w.stage(n)
	return nil
}

// stage keeps in the staging file the bytes of the last n committed that
// emit left uncut (the bytes held before them are staged already), or
// replaces the file by one holding all held bytes when it has grown large.
// It runs after emit's Appends returned, so a byte in no record is in a
// chunk.
func (w *Writer) stage(n int) {
	if w.st == nil {
		return
	}
	if w.st.due() {
		var err error
		if w.st, err = w.st.compact(w.sp.Bytes(), w.buf); err == nil {
			return // the new file holds the tail too
		}
		w.stageErr = fmt.Errorf("compacting staging file: %w", err) // the old one is still good
	}
	tail := w.buf[len(w.buf)-min(n, len(w.buf)):]
	if len(tail) == 0 {
		return
	}
	if err := w.st.write(w.sp.Bytes()+int64(len(w.buf)-len(tail)), tail); err != nil {
		w.stageErr = fmt.Errorf("staging output: %w", err)
		w.unstage()
	}
}

// Flush cuts and appends everything held, also a short chunk.
func (w *Writer) Flush() error {
	if w.failed != nil {
		return w.failed
	}
	return w.emit(true, time.Now())
}

// Buffered returns how many bytes are held, not yet cut.
func (w *Writer) Buffered() int { return len(w.buf) }

// Oldest returns when the oldest held byte was written (meaningful when
// Buffered is not 0): a caller flushes after its flush interval.
func (w *Writer) Oldest() time.Time { return w.oldest }

// Dropped returns how many bytes were written after the spool stopped
// taking chunks, including those held at that moment.
func (w *Writer) Dropped() int64 { return w.dropped }

// Close flushes, seals the spool and removes the staging file. After a
// spool error it only seals what the spool has.
func (w *Writer) Close() error {
	ferr := w.Flush()
	if errors.Is(ferr, w.failed) {
		ferr = nil // already reported by Write or Flush
	}
	if err := w.sp.Seal(); err != nil {
		return errors.Join(ferr, fmt.Errorf("sealing spool: %w", err))
	}
	w.unstage()
	return ferr
}

// Abandon closes the staging file and leaves it in place, for the Writer
// that takes over (NewWriter) or the next start. The Writer must not be
// used afterwards.
func (w *Writer) Abandon() {
	if w.st != nil {
		w.st.close()
		w.st = nil
	}
}

// emit appends every chunk the held bytes make; what is left arrived at the
// earliest at since.
func (w *Writer) emit(flush bool, since time.Time) error {
	for {
		n := cut(w.buf, w.size, flush)
		if n == 0 {
			return nil
		}
		if _, err := w.sp.Append(w.buf[:n]); err != nil {
			w.failed = err
			w.dropped += int64(len(w.buf))
			w.buf = w.buf[:0]
			w.unstage()
			return err
		}
		w.buf = w.buf[:copy(w.buf, w.buf[n:])]
		w.oldest = since
	}
}

func (w *Writer) unstage() {
	if w.st != nil {
		if err := w.st.remove(); err != nil {
			w.stageErr = fmt.Errorf("removing staging file: %w", err)
		}
		w.st = nil
	}
}

// RecoverStaged appends to sp, an unsealed spool found at start, the bytes
// a crashed Writer had staged but not cut, as chunks of at most chunkSize,
// seals it and removes the staging file. It returns how many staged bytes
// it appended; on an error the rest is lost (the spool keeps what it has).
func RecoverStaged(sp *Spool, chunkSize int) (int64, error) {
	before := sp.Bytes()
	w := NewWriter(sp, chunkSize)
	err := errors.Join(w.StagingErr(), w.Close())
	if rerr := removeStage(sp.Dir()); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return sp.Bytes() - before, err
}

// cut returns how many bytes of buf form the next chunk, at most size. A
// full chunk ends at the last newline within size bytes when there is one;
// with flush set (output waited long enough, or no more will come) a short
// chunk is cut too, ending at the last newline when buf holds one. 0 means
// no chunk yet.
func cut(buf []byte, size int, flush bool) int {
	if len(buf) >= size {
		if i := bytes.LastIndexByte(buf[:size], '\n'); i >= 0 {
			return i + 1
		}
		return size
	}
	if !flush || len(buf) == 0 {
		return 0
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		return i + 1
	}
	return len(buf)
}
