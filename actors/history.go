package actors

import (
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// startHistory starts the queue that writes run records to Options.Runs
// (persistence.HistoryQueue: write-behind, newest row per run, retried
// through a database outage).
func (rt *Runtime) startHistory() {
	if rt.opts.Runs == nil {
		return
	}
	rt.history = persistence.NewHistoryQueue(rt.opts.Runs, persistence.HistoryOptions{
		OnDrop: func(r persistence.Run, err error) {
			rt.log.Warn("recording run history; record dropped", "trace_path", r.Path, "state", r.State, "err", err)
		},
		OnWait: func(pending int, retryIn time.Duration) {
			rt.log.Warn("database unavailable; run history waits", "runs", pending, "retry_in", retryIn.String())
		},
	})
}

func (rt *Runtime) enqueueRun(rec persistence.Run) {
	if rt.history != nil {
		rt.history.Put(rec)
	}
}

// recordRun queues r's history row in state.
func (rt *Runtime) recordRun(r *traceRun, state string) { rt.enqueueRun(r.runRecord(state)) }

// recordRunFinished queues r's final history row once the platform
// acknowledged its finished message.
func (rt *Runtime) recordRunFinished(r *traceRun, fin messages.Finish) {
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
