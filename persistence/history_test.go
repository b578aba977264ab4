package persistence

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestHistoryQueue: rows put in the queue reach the store by Close, the
// newest row of a run wins, and a store that is closed (every write fails
// for good) makes the queue give rows up through OnDrop, not block.
func TestHistoryQueue(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := testContext(t)
		start := time.Now().UTC().Truncate(time.Millisecond)
		q := NewHistoryQueue(s, HistoryOptions{})
		for i, state := range []string{RunRunning, RunDelivering, RunFinished} {
			for _, path := range []string{"/t/a.trace", "/t/b.trace"} {
				r := sampleRun(path, int64(i+1), start)
				r.State = state
				if !q.Put(r) {
					t.Fatal("Put refused a row")
				}
			}
		}
		q.Close()
		for _, path := range []string{"/t/a.trace", "/t/b.trace"} {
			got, err := s.GetRun(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "state of "+path, got.State, RunFinished)
		}

		var mu sync.Mutex
		var dropped []error
		s.Close()
		q = NewHistoryQueue(s, HistoryOptions{OnDrop: func(_ Run, err error) {
			mu.Lock()
			dropped = append(dropped, err)
			mu.Unlock()
		}})
		q.Put(sampleRun("/t/c.trace", 9, start))
		q.Close()
		mu.Lock()
		defer mu.Unlock()
		if len(dropped) != 1 || dropped[0] == nil || errors.Is(dropped[0], ErrBacklogFull) {
			t.Errorf("dropped %v, want the store's error", dropped)
		}
	})
}
