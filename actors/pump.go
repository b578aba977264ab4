package actors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

// readSize is how much the pump asks the pipe for at once.
const readSize = 64 << 10

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

// deadliner is what the pump needs of a pipe to flush a quiet trace without
// a second goroutine: os.File pipes have it.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// pump is the pump worker: it reads the tracer's stdout until EOF, cuts it
// into chunks and appends them to the spool, then seals the spool and
// reports *pumpEnded. What it has read but not yet cut is kept in the
// staging file (see stage.go): a restarted pump takes those bytes from the
// staging file and goes on reading, so a pump panic loses nothing. Output
// that has waited for FlushInterval is cut even when short. When the spool
// stops taking output the pump reports *spoolFailed (the actor stops the
// trace) and reads on, counting the rest as dropped, so the tracer is not
// blocked.
func pump(rt *Runtime, path string, sp *spool.Spool, proc *tracer.Process, post func(interface{})) error {
	log := rt.log.With("trace_path", path)
	out := proc.Stdout()
	dl, _ := out.(deadliner)
	if dl == nil {
		log.Warn("tracer output cannot be read with a deadline; quiet output waits for more")
	}
	size, flushEvery := rt.opts.ChunkSize, rt.opts.FlushInterval
	pending, err := readStaged(sp.Dir(), sp.Bytes())
	if err != nil {
		log.Error("reading staged output of an earlier pump", "err", err)
		pending = nil
	}
	st, err := createStage(sp.Dir(), sp.Bytes(), pending)
	if err != nil {
		log.Error("creating staging file: output read but not yet chunked is lost if the endpoint crashes", "err", err)
	}
	defer func() {
		if st != nil {
			st.close()
		}
	}()
	unstage := func() {
		if st != nil {
			if err := st.remove(); err != nil {
				log.Warn("removing staging file", "err", err)
			}
			st = nil
		}
	}

	buf := make([]byte, 0, max(size+readSize, len(pending)+readSize))
	buf = append(buf, pending...)
	oldest := time.Now() // when the oldest unsent byte in buf arrived
	full := false
	var dropped int64

	emit := func(flush bool) {
		for !full {
			n := cut(buf, size, flush)
			if n == 0 {
				return
			}
			if _, err := sp.Append(buf[:n]); err != nil {
				full = true
				dropped += int64(len(buf))
				buf = buf[:0]
				unstage()
				post(&spoolFailed{err: err, full: errors.Is(err, spool.ErrFull)})
				return
			}
			rt.opts.Observer.SpoolBytes(int64(n))
			buf = buf[:copy(buf, buf[n:])]
			oldest = time.Now()
			if st != nil {
				if st, err = st.compact(sp.Bytes(), buf); err != nil {
					log.Warn("compacting staging file", "err", err)
				}
			}
		}
	}

	for {
		if dl != nil {
			var d time.Time
			if len(buf) > 0 {
				d = oldest.Add(flushEvery)
			}
			_ = dl.SetReadDeadline(d)
		}
		// emit leaves fewer than size bytes in buf (a drop leaves none),
		// so there is always room for a whole read.
		n, err := out.Read(buf[len(buf):cap(buf)])
		if n > 0 && st != nil && !full {
			// Staged before it counts as read: a crash from here on
			// loses nothing.
			if serr := st.write(buf[len(buf) : len(buf)+n]); serr != nil {
				log.Error("staging tracer output", "err", serr)
				unstage()
			}
		}
		if n > 0 {
			if len(buf) == 0 {
				oldest = time.Now()
			}
			if full {
				dropped += int64(n)
			} else {
				buf = buf[:len(buf)+n]
				rt.opts.hooks.checkpoint(wPump, path)
				emit(false)
			}
			post(&chunkSpooled{read: int64(n), spooled: sp.Bytes()})
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			emit(true)
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Error("reading tracer output", "err", err)
			}
			for len(buf) > 0 && !full {
				emit(true)
			}
			if err := sp.Seal(); err != nil {
				return fmt.Errorf("sealing spool: %w", err)
			}
			unstage()
			post(&pumpEnded{dropped: dropped})
			return nil
		}
	}
}
