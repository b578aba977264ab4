package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunWriter is what a HistoryQueue needs of a store: *Store implements it.
type RunWriter interface {
	// CreateRun records a newly started trace; ErrExists if its path is taken.
	CreateRun(ctx context.Context, r Run) error
	// UpdateRun overwrites the run stored under r.Path; ErrNotFound if none.
	UpdateRun(ctx context.Context, r Run) error
}

// DefaultHistoryBacklog is HistoryOptions.Backlog when it is 0.
const DefaultHistoryBacklog = 1024

// HistoryOptions configure a HistoryQueue. The callbacks are how the queue,
// which does not log, tells its owner what it could not do; they are
// called from the queue's goroutine and must not block.
type HistoryOptions struct {
	// Backlog bounds the runs waiting for the database (and the queue's
	// channel). Default DefaultHistoryBacklog.
	Backlog int
	// WriteTimeout bounds one write. Default 2s.
	WriteTimeout time.Duration
	// OnDrop hears of a run row given up: the backlog was full, or the
	// database refused it for good (not ErrUnavailable), or the database
	// was still unavailable at Close.
	OnDrop func(r Run, err error)
	// OnWait hears that the database is unavailable and pending rows wait
	// retryIn before the next try.
	OnWait func(pending int, retryIn time.Duration)
}

// ErrBacklogFull is given to OnDrop (and Put returns false) when the
// backlog cannot take another run.
var ErrBacklogFull = errors.New("run history backlog full")

// HistoryQueue writes run rows behind the back of its callers: Put never
// blocks, and a database outage never holds up a trace. Rows are whole
// records, so only the newest per path matters: while the database is
// unavailable the queue keeps the newest row of each run (up to Backlog
// runs) and retries with backoff, in the order the runs first came, so
// that a run that starts or ends during an outage still gets its row once
// the database is back, and a later row never overtakes an earlier one.
// The queue owns one goroutine; Close stops it.
type HistoryQueue struct {
	w    RunWriter
	o    HistoryOptions
	in   chan Run
	stop chan struct{}
	done chan struct{}
}

// NewHistoryQueue starts a queue writing to w.
func NewHistoryQueue(w RunWriter, o HistoryOptions) *HistoryQueue {
	if o.Backlog <= 0 {
		o.Backlog = DefaultHistoryBacklog
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 2 * time.Second
	}
	if o.OnDrop == nil {
		o.OnDrop = func(Run, error) {}
	}
	if o.OnWait == nil {
		o.OnWait = func(int, time.Duration) {}
	}
	q := &HistoryQueue{w: w, o: o, in: make(chan Run, o.Backlog), stop: make(chan struct{}), done: make(chan struct{})}
	go q.loop()
	return q
}

// Put queues r; false (and OnDrop) when the queue is full.
func (q *HistoryQueue) Put(r Run) bool {
	select {
	case q.in <- r:
		return true
	default:
		q.o.OnDrop(r, ErrBacklogFull)
		return false
	}
}

// Close writes what is queued once more (rows the database cannot take now
// go to OnDrop) and stops the queue's goroutine. Put must not be called
// after Close.
func (q *HistoryQueue) Close() {
	select {
	case <-q.stop:
	default:
		close(q.stop)
	}
	<-q.done
}

func (q *HistoryQueue) loop() {
	defer close(q.done)
	pending := make(map[string]Run)
	var order []string // paths in pending, oldest first
	add := func(r Run) {
		if _, ok := pending[r.Path]; !ok {
			if len(order) >= q.o.Backlog {
				q.o.OnDrop(r, ErrBacklogFull)
				return
			}
			order = append(order, r.Path)
		}
		pending[r.Path] = r
	}
	// flush writes pending rows in order; it stops at the first one the
	// database cannot take now and reports whether it did.
	flush := func() bool {
		for len(order) > 0 {
			r := pending[order[0]]
			if err := q.write(r); errors.Is(err, ErrUnavailable) {
				return false
			} else if err != nil {
				q.o.OnDrop(r, err)
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
		case r := <-q.in:
			add(r)
			if backoff > 0 {
				continue // waiting for the database: retry on the timer
			}
		case <-retry.C:
		case <-q.stop:
			for drained := false; !drained; {
				select {
				case r := <-q.in:
					add(r)
				default:
					drained = true
				}
			}
			if !flush() {
				for _, p := range order {
					q.o.OnDrop(pending[p], fmt.Errorf("database unavailable at shutdown: %w", ErrUnavailable))
				}
			}
			return
		}
		if flush() {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, time.Second), 30*time.Second)
		q.o.OnWait(len(order), backoff)
		retry.Reset(backoff)
	}
}

// write upserts one run row. A panic in the store is returned as an error:
// the queue's goroutine outlives it.
func (q *HistoryQueue) write(r Run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("writing run %s: panic: %v", r.Path, p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), q.o.WriteTimeout)
	defer cancel()
	err = q.w.UpdateRun(ctx, r)
	if errors.Is(err, ErrNotFound) {
		err = q.w.CreateRun(ctx, r)
	}
	return err
}
