package actors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
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

// pump reads the tracer's stdout until EOF, cuts it into chunks and appends
// them to the spool, then seals the spool. What it has read but not yet cut
// is kept in the staging file (see stage.go). Output that has waited for
// FlushInterval is cut even when short. When the spool is full the trace is
// stopped (reason spool-full) and the rest of the output is read and counted
// as dropped so the tracer is not blocked.
func (r *run) pump(proc *tracer.Process) {
	defer close(r.pumpDone)
	out := proc.Stdout()
	dl, _ := out.(deadliner)
	if dl == nil {
		r.rt.log.Warn("tracer output cannot be read with a deadline; quiet output waits for more", "trace_path", r.path())
	}
	size, flushEvery := r.rt.opts.ChunkSize, r.rt.opts.FlushInterval
	r.mu.Lock()
	sp := r.sp
	r.mu.Unlock()
	st, err := createStage(sp.Dir(), sp.Bytes(), nil)
	if err != nil {
		r.rt.log.Error("creating staging file: output read but not yet chunked is lost if the endpoint crashes",
			"trace_path", r.path(), "err", err)
	}
	unstage := func() {
		if st != nil {
			if err := st.remove(); err != nil {
				r.rt.log.Warn("removing staging file", "trace_path", r.path(), "err", err)
			}
			st = nil
		}
	}
	defer unstage()

	buf := make([]byte, 0, size+readSize)
	var oldest time.Time // when the oldest unsent byte in buf arrived
	full := false

	emit := func(flush bool) {
		for !full {
			n := cut(buf, size, flush)
			if n == 0 {
				return
			}
			if _, err := sp.Append(buf[:n]); err != nil {
				full = true
				r.bytesDropped.Add(int64(len(buf)))
				buf = buf[:0]
				unstage()
				if errors.Is(err, spool.ErrFull) {
					r.rt.log.Error("spool full: stopping trace", "trace_path", r.path(), "max_bytes", r.rt.opts.Spool.MaxBytes)
					r.stop(messages.ReasonSpoolFull)
				} else {
					r.rt.log.Error("appending to spool: stopping trace", "trace_path", r.path(), "err", err)
					r.stop(messages.ReasonSpoolError)
				}
				return
			}
			buf = buf[:copy(buf, buf[n:])]
			oldest = time.Now()
			if st != nil {
				if st, err = st.compact(sp.Bytes(), buf); err != nil {
					r.rt.log.Warn("compacting staging file", "trace_path", r.path(), "err", err)
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
				r.rt.log.Error("staging tracer output", "trace_path", r.path(), "err", serr)
				unstage()
			}
		}
		if n > 0 {
			if len(buf) == 0 {
				oldest = time.Now()
			}
			r.bytesRead.Add(int64(n))
			if full {
				r.bytesDropped.Add(int64(n))
			} else {
				buf = buf[:len(buf)+n]
				emit(false)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			emit(true)
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				r.rt.log.Error("reading tracer output", "trace_path", r.path(), "err", err)
			}
			for len(buf) > 0 && !full {
				emit(true)
			}
			if dropped := r.bytesDropped.Load(); dropped > 0 {
				r.rt.log.Warn("tracer output dropped after the spool stopped taking it",
					"trace_path", r.path(), "dropped_bytes", dropped)
			}
			if err := sp.Seal(); err != nil {
				r.rt.log.Error("sealing spool", "trace_path", r.path(), "err", err)
			}
			return
		}
	}
}
