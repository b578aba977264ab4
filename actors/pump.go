package actors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

// readSize is the most the pump asks the pipe for at once; minRead the
// least (see readFor).
const (
	readSize = 64 << 10
	minRead  = 16 << 10
)

// readFor is how much the pump asks a pipe of capacity bytes (0: not
// known) for when the writer, cutting chunks of chunk bytes, holds
// buffered bytes: as much as fills the buffer up to a chunk boundary (a
// multiple of the chunk size), at most readSize, so that in bulk output
// the chunks a full read completes take all of it but the tail of its
// last line, and the writer stages next to nothing (spool.Writer stages
// only what a commit leaves uncut). It is readSize when the next boundary
// is so near that such a read would be under minRead (the writer holds
// almost a chunk, or a chunk is larger than a read): a small read costs
// more system calls than the staging it would save, and the chunk the
// writer holds is cut by the next read anyway. It is readSize too for a
// pipe no larger than a read, which is read whole: asked for less than it
// holds when full, the pump would take the rest in a second, short read,
// followed (the pipe then being empty) by a gather wait, one per read in
// bulk output.
func readFor(chunk, buffered, capacity int) int {
	if chunk > 0 && (capacity <= 0 || capacity > readSize) {
		if r := (buffered+readSize)/chunk*chunk - buffered; r >= minRead {
			return r
		}
	}
	return readSize
}

// gatherWait is how long at most the pump lets a tracer's output collect in
// the pipe after a read that did not fill its buffer, before it reads
// again. bpftrace writes one line (about 140 bytes) per event; read at
// once, every line would cost a read, a staging write and a wake-up of the
// reader, and even a read per millisecond costs the scheduler more than the
// bytes. So the pump waits, after a short read, for about as long as the
// last rate of output takes to fill a read (readSize), at most gatherWait.
// The wait is scaled down to the pipe's capacity (tracer.StdoutPipeSize is
// 1 MiB: 10 ms of output fills it only above 100 MB/s, several times what
// bpftrace prints writing a line per event, so the tracer does not block),
// it never delays a flush: it ends at the flush deadline, lasts at most a
// quarter of the flush interval, and bytes read after a wait count as
// having arrived when the wait began, so the flush interval holds from the
// moment the tracer wrote them. Output not yet read is the tracer's, in
// the pipe: only bytes read are staged and promised. A constant, not a
// configuration key: it trades nothing a user chooses.
const gatherWait = 10 * time.Millisecond

// reportEvery is how often at most the pump tells the actor how many bytes
// it read and how many events the tracer reported lost (*chunkSpooled).
// Reported per read, each line would cost two actor messages (the trace
// actor's and its status push to the registry). The counts reported are
// exact: what is pending is reported when the pump ends, also by a panic.
const reportEvery = 100 * time.Millisecond

// deadliner is what the pump needs of a pipe to flush a quiet trace without
// a second goroutine: os.File pipes have it.
type deadliner interface {
	SetReadDeadline(time.Time) error
}

// pump is the pump worker: it reads the tracer's stdout until EOF into a
// spool.Writer (which cuts, appends and stages what it did not cut; each
// read sized by readFor so that little is left), then closes the writer
// (sealing the spool) and reports *pumpEnded. A restarted pump's writer
// takes over what the failed one had staged but not cut, so a pump panic
// loses nothing. Output that has waited for FlushInterval is cut even when
// short. When the spool stops taking output the pump reports *spoolFailed
// (the actor stops the trace) and reads on, the writer counting the rest as
// dropped, so the tracer is not blocked.
//
// After a short read the pump waits (see gatherWait) so that the next read
// takes many lines at once; bytes read and events lost are reported to the
// actor at most every reportEvery, and exactly when the pump ends.
//
// With notices (bpftrace), the tracer's own notices are filtered out of the
// output (tracer.NoticeFilter: "Attaching N probes...", blank lines, "Lost N
// events") so that every line the platform gets is one JSON object; the
// events bpftrace reports lost are counted in *chunkSpooled. bytesRead
// counts what was read, the spool what is delivered.
func pump(rt *Runtime, ev messages.TraceEvent, sp *spool.Spool, proc tracerProc, notices bool, post func(interface{})) error {
	capacity := 0 // unknown: the native engine's output does not gather
	if c, ok := proc.(interface{ StdoutCapacity() int }); ok {
		capacity = c.StdoutCapacity()
	}
	if _, ok := proc.(*tracer.Process); ok {
		// A tracer's stdout is read in ppoll(2), outside the network
		// poller, so a waiting Read holds an OS thread. Locked and never
		// unlocked, that thread ends with the pump's goroutine instead of
		// joining the runtime's idle threads, which never shrink: the
		// endpoint keeps one thread per running trace, not one per trace
		// that ever ran at once.
		runtime.LockOSThread()
	}
	return pumpFrom(rt, ev, sp, proc.Stdout(), capacity, gatherFor(capacity), notices, post)
}

// gatherFor is the gather wait for a pipe of capacity bytes: gatherWait for
// tracer.StdoutPipeSize, proportionally less for a smaller pipe (the
// kernel's 64 KiB when the larger size was refused), none when the capacity
// is unknown.
func gatherFor(capacity int) time.Duration {
	if capacity <= 0 {
		return 0
	}
	return time.Duration(int64(gatherWait) * int64(min(capacity, tracer.StdoutPipeSize)) / tracer.StdoutPipeSize)
}

// pumpFrom is pump reading out, a pipe of capacity bytes (0: not known),
// waiting at most gather after a read that did not fill its buffer.
func pumpFrom(rt *Runtime, ev messages.TraceEvent, sp *spool.Spool, out io.Reader, capacity int, gather time.Duration, notices bool, post func(interface{})) error {
	path := ev.Path
	log := rt.log.With("trace_path", path)
	dl, _ := out.(deadliner)
	if dl == nil {
		log.Warn("tracer output cannot be read with a deadline; quiet output waits for more")
		gather = 0 // nothing would end a wait at the flush deadline
	}
	flushEvery := rt.opts.FlushInterval
	gather = min(gather, flushEvery/4)
	w := spool.NewWriter(sp, rt.opts.ChunkSize)
	if err := w.StagingErr(); err != nil {
		log.Error("staging tracer output: output read but not yet chunked is lost if the endpoint crashes", "err", err)
	}

	// The counts read but not reported yet, and when they were last.
	var pendRead, pendLost int64
	lastReport := time.Now()
	report := func() {
		if pendRead > 0 || pendLost > 0 {
			post(&chunkSpooled{read: pendRead, spooled: sp.Bytes(), lost: pendLost})
			pendRead, pendLost = 0, 0
		}
		lastReport = time.Now()
	}
	closed := false
	defer func() {
		if !closed {
			w.Abandon() // a panic: the next pump takes the staged bytes over
			report()    // and the counts stay exact
		}
	}()
	var filter *tracer.NoticeFilter
	slack := 0
	if notices {
		filter, slack = &tracer.NoticeFilter{}, tracer.NoticeSlack
	}
	w.Space(readSize + slack) // the buffer, allocated once: a chunk plus the largest read
	reported := false
	spooled := func(before int64, err error) {
		if d := sp.Bytes() - before; d > 0 {
			rt.opts.Observer.SpoolBytes(ev, d)
		}
		if err != nil && !reported {
			reported = true
			post(&spoolFailed{err: err, full: errors.Is(err, spool.ErrFull)})
		}
	}
	// flushAt is when the held bytes must be cut (zero: nothing held).
	flushAt := func() time.Time {
		if w.Buffered() == 0 {
			return time.Time{}
		}
		return w.Oldest().Add(flushEvery)
	}
	var deadline time.Time // the read deadline set, valid while deadlineSet
	deadlineSet := false
	lastRead := time.Now()    // when the last read returned
	var waitedSince time.Time // when the wait before this read began (zero: no wait)
	for {
		if dl != nil {
			d := flushAt()
			if pendRead > 0 || pendLost > 0 {
				if r := lastReport.Add(reportEvery); d.IsZero() || r.Before(d) {
					d = r
				}
			}
			if !deadlineSet || !d.Equal(deadline) {
				_ = dl.SetReadDeadline(d)
				deadline, deadlineSet = d, true
			}
		}
		// Read straight into the writer's buffer: one buffer of a chunk
		// plus a read per trace.
		want := readFor(rt.opts.ChunkSize, w.Buffered(), capacity)
		space := w.Space(want + slack)
		n, err := out.Read(space[slack:])
		now := time.Now()
		sinceRead := now.Sub(lastRead) // the time the bytes read took to arrive
		lastRead = now
		since := now // the earliest the bytes read can have arrived
		if !waitedSince.IsZero() {
			since = waitedSince
		}
		if n > 0 {
			waitedSince = time.Time{}
			keep, lost := n, int64(0)
			if filter != nil {
				before := filter.Lost
				keep = filter.FilterInPlace(space, n)
				lost = filter.Lost - before
			}
			before := sp.Bytes()
			werr := w.CommitSince(keep, since)
			pendRead += int64(n)
			pendLost += lost
			rt.opts.hooks.checkpoint(wPump, path)
			spooled(before, werr)
			if dl == nil || time.Since(lastReport) >= reportEvery {
				report()
			}
		}
		switch {
		case err == nil:
			if n < want && gather > 0 {
				// The pipe is empty: let the tracer's next lines
				// collect in it, for about as long as the last rate
				// takes to fill a read, but never past a flush.
				wait := gather
				if n > 0 && sinceRead > 0 {
					wait = min(wait, time.Duration(int64(sinceRead)*readSize/int64(n)))
				}
				if f := flushAt(); !f.IsZero() {
					wait = min(wait, time.Until(f))
				}
				if wait > 0 {
					if waitedSince.IsZero() {
						waitedSince = now
					}
					time.Sleep(wait)
				}
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			deadlineSet = false // an expired deadline stays expired: set it again
			now := time.Now()
			if f := flushAt(); !f.IsZero() && !now.Before(f) {
				before := sp.Bytes()
				spooled(before, w.Flush())
			}
			if now.Sub(lastReport) >= reportEvery {
				report()
			}
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Error("reading tracer output", "err", err)
			}
			if filter != nil {
				before := filter.Lost
				if tail := filter.Flush(nil); len(tail) > 0 {
					_, _ = w.Write(tail) // an error is the spool's, reported below by Close's flush
				}
				pendLost += filter.Lost - before
			}
			report()
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
