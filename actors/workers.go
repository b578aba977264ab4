package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
)

// worker is the handle of one worker goroutine of a trace actor. The
// goroutine sets ok and last once, before it closes done; the actor reads
// them only after done is closed. done is closed after the worker's last
// report when it ended normally, before its workerFailed report when it
// failed.
type worker struct {
	done      chan struct{}
	ok        bool        // ended without error
	last      interface{} // the last message it posted
	notBefore time.Time   // a failed worker is started again from then on
}

func (w *worker) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// startWorker runs f in a goroutine owned by the runtime (counted, stopped
// through ctx) on behalf of the actor owner. f reports to owner with post;
// a panic in f, or an error while ctx is not done, is reported as
// *workerFailed so that the owner starts the worker again.
func (rt *Runtime) startWorker(ctx context.Context, name, path string, owner *actor.PID, f func(post func(interface{})) error) *worker {
	w := &worker{done: make(chan struct{})}
	var last interface{}
	post := func(msg interface{}) {
		last = msg
		rt.system.Root.Send(owner, msg)
	}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			err = f(post)
		}()
		w.ok, w.last = err == nil, last
		close(w.done)
		if err != nil && ctx.Err() == nil {
			rt.system.Root.Send(owner, &workerFailed{name: name, err: err})
		}
	}()
	return w
}

// launch is the launcher worker: it creates the run's spool (fsyncs) and
// starts the tracer (fork/exec), or with plan the native engine's trace
// (loads and attaches its probes in the endpoint; runCtx, the run's
// context, ends it). startCtx bounds the start: the launch deadline, or a
// kill while starting. Either failure is reported in *launched: the run
// then ends failed-to-start (or with the kill's reason), and the platform
// still gets start and finished.
func launch(runCtx, startCtx context.Context, rt *Runtime, meta runMeta, cmd tracer.Command, plan *native.Plan,
	bin binary.Identity, post func(interface{})) error {
	rt.opts.hooks.checkpoint(wLauncher, meta.Path)
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encoding run meta: %w", err)
	}
	fail := func(sp *spool.Spool, err error, reason string) {
		if plan != nil {
			plan.Close()
		}
		if sp != nil {
			if serr := sp.Seal(); serr != nil {
				err = errors.Join(err, fmt.Errorf("sealing spool: %w", serr))
			}
		}
		post(&launched{sp: sp, err: err, reason: reason})
	}
	cut := func(sp *spool.Spool) bool {
		err := startCtx.Err()
		if err == nil {
			return false
		}
		// Killed while starting, or given up on (launchOverdue): nothing
		// was spooled, so no spool is left behind for a run that may
		// already be delivered.
		if sp != nil {
			if rerr := sp.Remove(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("removing spool: %w", rerr))
			}
		}
		fail(nil, fmt.Errorf("starting the tracer: %w", err), "")
		return true
	}
	if cut(nil) {
		return nil
	}
	sp, err := spool.Create(rt.spoolPath(meta.Path), b, rt.opts.Spool)
	if err != nil {
		fail(nil, fmt.Errorf("creating spool: %w", err), "")
		return nil
	}
	if cut(sp) {
		return nil
	}
	// The binary must still be the one the preflight checked, right before
	// the tracer resolves its path. (The native engine's probes go into
	// the file the plan holds open: the path does not matter to them.)
	if bin != (binary.Identity{}) && plan == nil {
		if err := bin.Check(meta.Info.Process); err != nil {
			fail(sp, fmt.Errorf("checking the traced binary: %w", err), messages.ReasonBinaryChanged)
			return nil
		}
	}
	var proc tracerProc
	if plan != nil {
		var t *native.Trace
		if t, err = plan.Start(runCtx); err == nil {
			proc = &nativeProc{t: t}
		} else {
			err = fmt.Errorf("starting native engine: %w", err)
		}
	} else {
		var tp *tracer.Process
		if tp, err = tracer.Start(startCtx, cmd); err == nil {
			proc = tp
		} else {
			err = fmt.Errorf("launching tracer: %w", err)
		}
	}
	plan = nil // Plan.Start closed it
	if err != nil {
		fail(sp, err, "")
		return nil
	}
	if startCtx.Err() != nil {
		// Cut off while it started (the run may be delivered already):
		// stop what started, here, where it is known.
		proc.Kill()
		proc.Wait()
		cut(sp)
		return nil
	}
	post(&launched{sp: sp, proc: proc})
	return nil
}

// send is the sender worker: start (unless the platform has it), then every
// chunk in order from the spool's acknowledged position, each acknowledged
// in the spool once the platform took it. It ends with *allAcked when the
// spool is sealed and every chunk delivered. A restarted sender resumes at
// the spool's acknowledged position: at most one chunk is sent again, with
// the same bytes.
//
// With a Submitter that prepares chunks (platform.Client), the next chunk
// is read from the spool and encoded while the one before is in flight
// (sendPipelined): still one request at a time, strictly in order.
func send(ctx context.Context, rt *Runtime, path string, sp *spool.Spool, started bool, post func(interface{})) error {
	sub := rt.opts.Submitter
	// An acknowledged chunk means the start was acknowledged before it; a
	// start sent again before any chunk is an accepted duplicate.
	if !started && sp.Acked() == 0 {
		if err := sub.Start(ctx, path); err != nil {
			return fmt.Errorf("submitting start: %w", err)
		}
		post(&startAcked{})
	}
	rep := &ackReport{post: post, sp: sp}
	defer rep.flush()
	if p, ok := sub.(chunkPreparer); ok {
		return sendPipelined(ctx, rt, path, sp, p, rep)
	}
	for {
		no := sp.Acked()
		err := sp.Wait(ctx, no)
		if errors.Is(err, io.EOF) {
			rep.flush()
			post(&allAcked{})
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for chunk %d: %w", no, err)
		}
		buf := rt.readBuf()
		data, err := sp.ReadInto(*buf, no)
		if err != nil {
			rt.readBufs.Put(buf)
			return fmt.Errorf("reading spooled chunk %d: %w", no, err)
		}
		err = sub.Chunk(ctx, path, no, data)
		rt.readBufs.Put(buf)
		if err != nil {
			return fmt.Errorf("submitting chunk %d: %w", no, err)
		}
		if err := acked(rt, path, sp, no, rep); err != nil {
			return err
		}
	}
}

// chunkPreparer is a Submitter that encodes a chunk's request ahead of
// sending it (platform.Client does).
type chunkPreparer interface {
	PrepareChunk(trace string, no int64, data []byte) *platform.PreparedChunk
	SendChunk(ctx context.Context, c *platform.PreparedChunk) error
}

// prepared is one chunk the sender's reader has read and encoded, or how
// the reader ended (eof: the spool is sealed and every chunk was read).
type prepared struct {
	no    int64
	chunk *platform.PreparedChunk
	eof   bool
	err   error
}

// sendPipelined is send's chunk loop with a reader goroutine, owned by it,
// that reads and encodes chunk n+1 while chunk n is in flight: at most one
// chunk waits encoded, one request is in flight, and chunks are sent and
// acknowledged strictly in order. The reader's panic or error ends the
// sender with that error (the actor starts it again from the spool).
func sendPipelined(ctx context.Context, rt *Runtime, path string, sp *spool.Spool, sub chunkPreparer, rep *ackReport) error {
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan prepared) // unbuffered: one chunk ahead at most
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ready)
		defer func() {
			if p := recover(); p != nil {
				select {
				case ready <- prepared{err: fmt.Errorf("panic reading chunks: %v", p)}:
				case <-rctx.Done():
				}
			}
		}()
		readChunks(rctx, rt, path, sp, sub, ready)
	}()
	defer func() {
		cancel()
		for r := range ready { // until the reader has returned
			if r.chunk != nil {
				r.chunk.Release()
			}
		}
		<-done
	}()
	for r := range ready {
		switch {
		case r.err != nil:
			return r.err
		case r.eof:
			rep.flush()
			rep.post(&allAcked{})
			return nil
		}
		if err := sub.SendChunk(ctx, r.chunk); err != nil {
			return fmt.Errorf("submitting chunk %d: %w", r.no, err)
		}
		if err := acked(rt, path, sp, r.no, rep); err != nil {
			return err
		}
	}
	return ctx.Err() // the reader stopped because ctx is done
}

// readChunks is sendPipelined's reader: from the acknowledged position on,
// it waits for each chunk, reads it into one reused buffer, encodes it and
// hands it over, until the spool is sealed and read (eof) or an error.
func readChunks(ctx context.Context, rt *Runtime, path string, sp *spool.Spool, sub chunkPreparer, ready chan<- prepared) {
	give := func(r prepared) bool {
		select {
		case ready <- r:
			return true
		case <-ctx.Done():
			if r.chunk != nil {
				r.chunk.Release()
			}
			return false
		}
	}
	for no := sp.Acked(); ; no++ {
		err := sp.Wait(ctx, no)
		if errors.Is(err, io.EOF) {
			give(prepared{eof: true})
			return
		}
		if err != nil {
			give(prepared{err: fmt.Errorf("waiting for chunk %d: %w", no, err)})
			return
		}
		buf := rt.readBuf()
		data, err := sp.ReadInto(*buf, no)
		if err != nil {
			rt.readBufs.Put(buf)
			give(prepared{err: fmt.Errorf("reading spooled chunk %d: %w", no, err)})
			return
		}
		chunk := sub.PrepareChunk(path, no, data) // does not retain data
		rt.readBufs.Put(buf)
		if !give(prepared{no: no, chunk: chunk}) {
			return
		}
	}
}

// readBuf returns a buffer for reading one chunk back (spool.ReadInto), to
// be put back into rt.readBufs once the chunk is sent or encoded. A chunk
// recovered from an earlier run with a larger chunk size gets a buffer of
// its own from ReadInto.
func (rt *Runtime) readBuf() *[]byte {
	if b, ok := rt.readBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, rt.opts.ChunkSize+spool.RecordOverhead)
	return &b
}

// acked records in the spool that the platform took chunk no and reports it.
func acked(rt *Runtime, path string, sp *spool.Spool, no int64, rep *ackReport) error {
	rt.opts.hooks.checkpoint(wSender, path)
	if err := sp.Ack(no); err != nil {
		return fmt.Errorf("recording acknowledgement of chunk %d: %w", no, err)
	}
	rep.add(no)
	return nil
}

// ackReport tells the trace actor how far the sender got (*chunkAcked). A
// report per chunk would cost two actor messages per chunk (the actor's and
// its status push to the registry), many a second while a trace prints; so
// while more chunks are waiting in the spool the sender reports at most
// every reportEvery, and at once when it has caught up (it is about to
// wait for output, so a quiet trace's counts are current) or ends. The
// actor takes the counts from the spool (traceActor.syncAcked), which Ack
// updated before any report, so nothing is lost by reporting late: a
// restarted sender's actor finds the same position.
type ackReport struct {
	post    func(interface{})
	sp      *spool.Spool
	last    time.Time
	pending bool // an acknowledgement not reported yet
}

// add records that chunk no was acknowledged.
func (a *ackReport) add(no int64) {
	a.pending = true
	if a.sp.Next() <= no+1 || time.Since(a.last) >= reportEvery {
		a.flush()
	}
}

// flush posts what was not reported yet.
func (a *ackReport) flush() {
	if !a.pending {
		return
	}
	a.post(&chunkAcked{})
	a.pending, a.last = false, time.Now()
}

// finish is the finisher worker: the finished message (with start first
// when a run without a spool never sent it), then the spool's removal.
func finish(ctx context.Context, rt *Runtime, path string, sp *spool.Spool, final finalState, started bool, post func(interface{})) error {
	sub := rt.opts.Submitter
	if sp == nil && !started {
		if err := sub.Start(ctx, path); err != nil {
			return fmt.Errorf("submitting start: %w", err)
		}
	}
	fin := platformFinish(final, sp)
	if err := sub.Finished(ctx, path, fin); err != nil {
		return fmt.Errorf("submitting finished: %w", err)
	}
	rt.opts.hooks.checkpoint(wFinisher, path)
	if sp != nil {
		if err := sp.Remove(); err != nil && !errors.Is(err, spool.ErrClosed) {
			rt.log.Error("removing delivered spool", "trace_path", path, "err", err)
		}
	}
	post(&delivered{fin: fin})
	return nil
}

// platformFinish is the finished message of a run that ended as final, with
// the spool's completeness proof (of nothing when there is no spool).
func platformFinish(final finalState, sp *spool.Spool) messages.Finish {
	fin := messages.Finish{Stderr: final.Stderr, Code: final.Code, Reason: final.Reason, LostEvents: final.LostEvents}
	if sp == nil {
		sum := sha256.Sum256(nil)
		fin.SHA256 = hex.EncodeToString(sum[:])
		return fin
	}
	sum := sp.SHA256()
	fin.Chunks, fin.Bytes, fin.SHA256 = sp.Next(), sp.Bytes(), hex.EncodeToString(sum[:])
	return fin
}
