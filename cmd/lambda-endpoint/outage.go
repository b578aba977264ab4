package main

import (
	"log/slog"
	"sync"
	"time"
)

// outageLog logs a platform outage twice: once when the first submission
// fails (WARN, with the error) and once when one is acknowledged again
// (INFO, with how long it lasted, how many attempts failed meanwhile and the
// output still waiting in the spools). Single retries go to DEBUG, so a long
// outage does not flood the log with one line per attempt.
type outageLog struct {
	log     *slog.Logger
	backlog func() int64 // bytes read but not yet acknowledged
	now     func() time.Time

	mu     sync.Mutex
	down   bool
	since  time.Time
	failed int
}

func (o *outageLog) retry(kind, trace string, attempt int, err error, wait time.Duration) {
	o.mu.Lock()
	first := !o.down
	if first {
		o.down, o.since, o.failed = true, o.now(), 0
	}
	o.failed++
	o.mu.Unlock()
	if first {
		o.log.Warn("platform unreachable or refusing: submissions are retried until it answers; output waits in the spool",
			"kind", kind, "trace_path", trace, "err", err, "backlog_bytes", o.backlog())
		return
	}
	o.log.Debug("submit failed; retrying", "kind", kind, "trace_path", trace,
		"attempt", attempt, "retry_in", wait.String(), "err", err)
}

func (o *outageLog) recovered(kind, trace string, attempts int) {
	o.mu.Lock()
	was, since, failed := o.down, o.since, o.failed
	o.down = false
	o.mu.Unlock()
	if was {
		o.log.Info("platform answering again", "outage_seconds", o.now().Sub(since).Seconds(),
			"failed_attempts", failed, "backlog_bytes", o.backlog())
	}
}
