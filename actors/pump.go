package actors

import (
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

// deadliner is what the pump needs of a pipe to flush a quiet trace without
// a second goroutine: os.File pipes have it.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// pump is the pump worker: it reads the tracer's stdout until EOF into a
// spool.Writer (which stages, cuts and appends), then closes the writer
// (sealing the spool) and reports *pumpEnded. A restarted pump's writer
// takes over what the failed one had staged but not cut, so a pump panic
// loses nothing. Output that has waited for FlushInterval is cut even when
// short. When the spool stops taking output the pump reports *spoolFailed
// (the actor stops the trace) and reads on, the writer counting the rest as
// dropped, so the tracer is not blocked.
//
// With notices (bpftrace), the tracer's own notices are filtered out of the
// output (tracer.NoticeFilter: "Attaching N probes...", blank lines, "Lost N
// events") so that every line the platform gets is one JSON object; the
// events bpftrace reports lost are counted in *chunkSpooled. bytesRead
// counts what was read, the spool what is delivered.
func pump(rt *Runtime, path string, sp *spool.Spool, proc tracerProc, notices bool, post func(interface{})) error {
	log := rt.log.With("trace_path", path)
	out := proc.Stdout()
	dl, _ := out.(deadliner)
	if dl == nil {
		log.Warn("tracer output cannot be read with a deadline; quiet output waits for more")
	}
	flushEvery := rt.opts.FlushInterval
	w := spool.NewWriter(sp, rt.opts.ChunkSize)
	if err := w.StagingErr(); err != nil {
		log.Error("staging tracer output: output read but not yet chunked is lost if the endpoint crashes", "err", err)
	}
	closed := false
	defer func() {
		if !closed {
			w.Abandon() // a panic: the next pump takes the staged bytes over
		}
	}()
	var filter *tracer.NoticeFilter
	slack := 0
	if notices {
		filter, slack = &tracer.NoticeFilter{}, tracer.NoticeSlack
	}
	reported := false
	spooled := func(before int64, err error) {
		if d := sp.Bytes() - before; d > 0 {
			rt.opts.Observer.SpoolBytes(d)
		}
		if err != nil && !reported {
			reported = true
			post(&spoolFailed{err: err, full: errors.Is(err, spool.ErrFull)})
		}
	}
	for {
		if dl != nil {
			var d time.Time
			if w.Buffered() > 0 {
				d = w.Oldest().Add(flushEvery)
			}
			_ = dl.SetReadDeadline(d)
		}
		// Read straight into the writer's buffer: one buffer of a chunk
		// plus a read per trace.
		space := w.Space(readSize + slack)
		n, err := out.Read(space[slack:])
		if n > 0 {
			keep, lost := n, int64(0)
			if filter != nil {
				before := filter.Lost
				keep = filter.FilterInPlace(space, n)
				lost = filter.Lost - before
			}
			before := sp.Bytes()
			werr := w.Commit(keep)
			rt.opts.hooks.checkpoint(wPump, path)
			spooled(before, werr)
			post(&chunkSpooled{read: int64(n), spooled: sp.Bytes(), lost: lost})
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			before := sp.Bytes()
			spooled(before, w.Flush())
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Error("reading tracer output", "err", err)
			}
			if filter != nil {
				before := filter.Lost
				if tail := filter.Flush(nil); len(tail) > 0 {
					_, _ = w.Write(tail) // an error is the spool's, reported below by Close's flush
				}
				if lost := filter.Lost - before; lost > 0 {
					post(&chunkSpooled{spooled: sp.Bytes(), lost: lost})
				}
			}
			before := sp.Bytes()
			cerr := w.Close()
			closed = true
			spooled(before, nil)
			if cerr != nil {
				return fmt.Errorf("closing spool writer: %w", cerr)
			}
			post(&pumpEnded{dropped: w.Dropped()})
			return nil
		}
	}
}
