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

// startHistory starts the goroutine that writes run records to Options.Runs.
// Records are full rows, so only the newest one per trace matters: while the
// database is unavailable the goroutine keeps the newest record of each
// trace (up to historyQueue traces) and retries with backoff, so a trace
// that starts or ends during an outage still gets its row once the database
// is back. History never holds up a trace: the spool, not the database,
// carries the output.
func (rt *Runtime) startHistory() {
	if rt.opts.Runs == nil {
		return
	}
	rt.history = make(chan persistence.Run, historyQueue)
	rt.goroutine("history", func() {
		pending := make(map[string]persistence.Run)
		var order []string // paths in pending, oldest first
		add := func(rec persistence.Run) {
			if _, ok := pending[rec.Path]; !ok {
				if len(order) >= historyQueue {
					rt.log.Warn("run history backlog full; record dropped", "trace_path", rec.Path, "state", rec.State)
					return
				}
				order = append(order, rec.Path)
			}
			pending[rec.Path] = rec
		}
		// flush writes pending records in order; it stops at the first
		// one the database cannot take now and reports whether it did.
		flush := func() bool {
			for len(order) > 0 {
				rec := pending[order[0]]
				if err := rt.writeRun(rec); errors.Is(err, persistence.ErrUnavailable) {
					return false
				} else if err != nil {
					rt.log.Warn("recording run history; record dropped", "trace_path", rec.Path, "state", rec.State, "err", err)
				}
				delete(pending, order[0])
				order = order[1:]
			}
			return true
		}
		retry := time.NewTimer(time.Hour)
		retry.Stop()
		backoff := time.Duration(0)
		for {
			select {
			case rec := <-rt.history:
				add(rec)
				if backoff > 0 {
					continue // waiting for the database: retry on the timer
				}
			case <-retry.C:
			case <-rt.ctx.Done():
				for {
					select {
					case rec := <-rt.history:
						add(rec)
						continue
					default:
					}
					break
				}
				if !flush() {
					rt.log.Warn("database unavailable at shutdown; run history not recorded", "runs", len(order))
				}
				return
			}
			if flush() {
				backoff = 0
				continue
			}
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			rt.log.Warn("database unavailable; run history waits", "runs", len(order), "retry_in", backoff.String())
			retry.Reset(backoff)
		}
	})
}

// writeRun upserts one run row.
func (rt *Runtime) writeRun(rec persistence.Run) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := rt.opts.Runs.UpdateRun(ctx, rec)
	if errors.Is(err, persistence.ErrNotFound) {
		err = rt.opts.Runs.CreateRun(ctx, rec)
	}
	return err
}

// runRecord is the history row of r in state.
func (r *traceRun) runRecord(state string) persistence.Run {
	rec := persistence.Run{
		Path: r.meta.Path, TemplateID: r.meta.TraceNo, Type: r.meta.Info.TraceType, Info: r.meta.Info,
		Mode: r.meta.Mode, Thread: r.meta.Thread, StartedAt: r.meta.StartedAt, Lasting: r.meta.Lasting,
		State: state, Reason: r.stopReason,
		BytesRead:   r.bytesRead,
		ChunksSent:  r.chunksAcked,
		ChunksAcked: r.chunksAcked,
	}
	if f := r.final; f != nil {
		code := f.Code
		rec.ExitCode, rec.Reason = &code, f.Reason
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
func (rt *Runtime) recordRun(r *traceRun, state string) { rt.enqueueRun(r.runRecord(state)) }

// recordRunFinished queues r's final history row once the platform
// acknowledged its finished message.
func (rt *Runtime) recordRunFinished(r *traceRun, fin platform.Finish) {
	rec := r.runRecord(persistence.RunFinished)
	if rec.Reason == messages.ReasonInterrupted {
		rec.State = persistence.RunInterrupted
	}
	now := time.Now().UTC()
	rec.FinishedAt = &now
	rec.SHA256 = fin.SHA256
	rec.ChunksSent, rec.ChunksAcked = fin.Chunks, fin.Chunks
	rt.enqueueRun(rec)
}
