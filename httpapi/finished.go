package httpapi

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Bounds of a FinishedLog: with these, it holds at most 512 KiB of stderr.
const (
	// DefaultFinishedRuns is how many finished runs a FinishedLog keeps.
	DefaultFinishedRuns = 128
	// StderrTailBytes is how much of a run's stderr (its end) is kept.
	StderrTailBytes = 4096
)

// FinishedLog keeps the end of the tracer's stderr of the most recent runs
// this process saw finish, for GET /traces/history (field stderrTail): the
// run history in the database does not record stderr. It reads the
// runtime's finished-trace subscription (actors.Runtime.Subscribe).
//
// Every read of the subscription happens under the log's lock, so that a
// lookup first takes in whatever the runtime has published: the runtime
// publishes a trace's TraceFinished before it stops listing the trace, so
// a caller that saw the trace disappear from GET /trace/running finds its
// stderr here. Run drains the subscription in the background so that it
// never fills up while nobody asks.
type FinishedLog struct {
	ch  <-chan messages.TraceFinished
	max int

	mu    sync.Mutex
	tails map[string]string // trace path -> stderr tail
	order []string          // paths, oldest first
}

// NewFinishedLog returns a log that reads ch and keeps the stderr tails of
// the last max runs (max <= 0: DefaultFinishedRuns).
func NewFinishedLog(ch <-chan messages.TraceFinished, max int) *FinishedLog {
	if max <= 0 {
		max = DefaultFinishedRuns
	}
	return &FinishedLog{ch: ch, max: max, tails: map[string]string{}}
}

// Run drains the subscription every period (<= 0: one second) until ctx
// is done.
func (l *FinishedLog) Run(ctx context.Context, period time.Duration) {
	if period <= 0 {
		period = time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.mu.Lock()
			l.drainLocked()
			l.mu.Unlock()
		}
	}
}

// StderrTail returns the end of the stderr of the run at path, if this log
// saw it finish.
func (l *FinishedLog) StderrTail(path string) (string, bool) {
	if l == nil {
		return "", false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drainLocked()
	s, ok := l.tails[path]
	return s, ok
}

func (l *FinishedLog) drainLocked() {
	for {
		select {
		case f, ok := <-l.ch:
			if !ok {
				return
			}
			l.addLocked(f.FilePath, tail(f.Stderr, StderrTailBytes))
		default:
			return
		}
	}
}

func (l *FinishedLog) addLocked(path, stderr string) {
	if _, seen := l.tails[path]; !seen {
		l.order = append(l.order, path)
	}
	l.tails[path] = stderr
	for len(l.order) > l.max {
		delete(l.tails, l.order[0])
		l.order = l.order[1:]
	}
}

// tail is the last n bytes of s, starting at a line when a line starts in
// the first half of them, as valid UTF-8.
func tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < n/2 {
			s = s[i+1:]
		}
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
