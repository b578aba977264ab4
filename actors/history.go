package actors

import (
	"context"
	"errors"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
)

// historyQueue bounds the run records waiting for the database.
const historyQueue = 1024

// startHistory starts the goroutine that writes run records, in order, to
// Options.Runs. History is best effort: the spool, not the database, is what
// guarantees delivery, so a record that cannot be written (database down,
// queue full) is logged and dropped, and a trace never waits for it.
func (rt *Runtime) startHistory() {
	if rt.opts.Runs == nil {
		return
	}
	rt.history = make(chan persistence.Run, historyQueue)
	rt.goroutine("history", func() {
		for {
			select {
			case rec := <-rt.history:
				rt.writeRun(rec)
			case <-rt.ctx.Done():
				// Write what is queued, briefly, then stop.
				for {
					select {
					case rec := <-rt.history:
						rt.writeRun(rec)
					default:
						return
					}
				}
			}
		}
	})
}

func (rt *Runtime) writeRun(rec persistence.Run) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := rt.opts.Runs.UpdateRun(ctx, rec)
	if errors.Is(err, persistence.ErrNotFound) {
		err = rt.opts.Runs.CreateRun(ctx, rec)
	}
	if err != nil {
		rt.log.Warn("recording run history", "trace_path", rec.Path, "state", rec.State, "err", err)
	}
}

// runRecord is the history row of r in state.
func (r *run) runRecord(state string) persistence.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := persistence.Run{
		Path: r.meta.Path, TemplateID: r.meta.TraceNo, Type: r.meta.Info.TraceType, Info: r.meta.Info,
		Mode: r.meta.Mode, Thread: r.meta.Thread, StartedAt: r.meta.StartedAt, Lasting: r.meta.Lasting,
		State: state, Reason: r.reason,
		BytesRead:   r.bytesRead.Load(),
		ChunksSent:  r.chunksSubmitted.Load(),
		ChunksAcked: r.chunksSubmitted.Load(),
	}
	if f := r.meta.Final; f != nil {
		code := f.Code
		rec.ExitCode, rec.Reason = &code, f.Reason
	}
	if r.recovered && r.sp != nil {
		rec.BytesRead = r.sp.Bytes()
	}
	return rec
}

func (rt *Runtime) enqueueRun(rec persistence.Run) {
	if rt.history == nil {
		return
	}
	select {
	case rt.history <- rec:
	default:
		rt.log.Warn("run history queue full; record dropped", "trace_path", rec.Path, "state", rec.State)
	}
}

// recordRun queues r's history row in state.
func (rt *Runtime) recordRun(r *run, state string) { rt.enqueueRun(r.runRecord(state)) }

// recordRunFinished queues r's final history row once the platform
// acknowledged its finished message.
func (rt *Runtime) recordRunFinished(r *run, final finalState, fin platform.Finish) {
	rec := r.runRecord(persistence.RunFinished)
	if final.Reason == messages.ReasonInterrupted {
		rec.State = persistence.RunInterrupted
	}
	now := time.Now().UTC()
	rec.FinishedAt = &now
	rec.SHA256 = fin.SHA256
	rec.ChunksSent, rec.ChunksAcked = fin.Chunks, fin.Chunks
	rt.enqueueRun(rec)
}
