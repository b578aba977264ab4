package actors

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// eventLog is an Observer that records which traces its events named.
type eventLog struct {
	NopObserver
	mu     sync.Mutex
	events map[string][]string // path -> event names, in order
	reads  map[string]int64
	acked  map[string]int64
}

func (l *eventLog) add(e messages.TraceEvent, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events[e.Path]) == 0 || l.events[e.Path][len(l.events[e.Path])-1] != name {
		l.events[e.Path] = append(l.events[e.Path], name)
	}
}

func (l *eventLog) TraceStarted(e messages.TraceEvent) { l.add(e, "started") }
func (l *eventLog) TracerExited(e messages.TraceEvent) { l.add(e, "exited") }
func (l *eventLog) TraceFinished(e messages.TraceEvent, f messages.TraceFinished) {
	if f.FilePath == e.Path {
		l.add(e, "finished:"+f.Reason)
	}
}
func (l *eventLog) OutputRead(e messages.TraceEvent, n int64) {
	l.mu.Lock()
	l.reads[e.Path] += n
	l.mu.Unlock()
}
func (l *eventLog) ChunkAcked(e messages.TraceEvent, _, n int64) {
	l.mu.Lock()
	l.acked[e.Path] += n
	l.mu.Unlock()
}

// TestEmbedding: what an embedder relies on. Every Observer event names its
// trace; the finished message carries what the platform got (bytes,
// chunks, sha256); cancelling the context given to Start stops the trace
// (reason killed) and its output is still delivered; a context already
// done stops the trace at once; Start after Shutdown is ErrShuttingDown.
func TestEmbedding(t *testing.T) {
	log := &eventLog{events: map[string][]string{}, reads: map[string]int64{}, acked: map[string]int64{}}
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.Observer = log })
	finished, unsubscribe := rt.Subscribe(8)
	defer unsubscribe()
	tests := []struct {
		name   string
		mode   string // the fake tracer's
		cancel string // "": never, "after-output", "before-start"
		reason string
		events string // the Observer's, of this trace
	}{
		{"completes", "lines 5 1ms", "", messages.ReasonCompleted, "started exited finished:completed"},
		{"context cancelled while running", "ignoreint", "after-output", messages.ReasonKilled, "started exited finished:killed"},
		// Killed before its tracer was launched: the launch is cut off.
		{"context done before start", "ignoreint", "before-start", messages.ReasonKilled, "finished:killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel == "before-start" {
				cancel()
			}
			started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(tt.mode), Lasting: time.Minute})
			if tt.cancel == "before-start" {
				// The caller's context bounds the wait for the answer too:
				// a start may be refused, or accepted and stopped at once.
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrTimeout) {
						t.Fatalf("Start with a done context: %v", err)
					}
					return
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.cancel == "after-output" {
				waitFor(t, func() bool {
					info, _, _ := rt.Running(context.Background(), started.FilePath)
					return info.BytesRead > 0
				})
				cancel()
			}
			var f messages.TraceFinished
			select {
			case f = <-finished:
			case <-time.After(30 * time.Second):
				t.Fatal("trace did not finish")
			}
			rec := p.Trace(started.FilePath)
			if f.FilePath != started.FilePath || f.Reason != tt.reason || f.Bytes != rec.Bytes || f.Chunks != rec.ChunkCount ||
				f.SHA256 != rec.SHA256 || f.SHA256 == "" || f.Type != messages.BPF || f.Engine != messages.EngineBPFtrace {
				t.Errorf("finished %+v\nplatform: %d bytes, %d chunks, sha256 %s", f, rec.Bytes, rec.ChunkCount, rec.SHA256)
			}
			waitFor(t, func() bool {
				log.mu.Lock()
				defer log.mu.Unlock()
				ev := log.events[started.FilePath]
				return len(ev) > 0 && ev[len(ev)-1] == "finished:"+tt.reason
			})
			log.mu.Lock()
			ev, read, acked := log.events[started.FilePath], log.reads[started.FilePath], log.acked[started.FilePath]
			log.mu.Unlock()
			if strings.Join(ev, " ") != tt.events {
				t.Errorf("events of the trace: %v, want %s", ev, tt.events)
			}
			if acked != rec.Bytes || read < rec.Bytes {
				t.Errorf("observer: %d bytes read, %d acknowledged; the platform got %d", read, acked, rec.Bytes)
			}
		})
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := rt.Start(context.Background(), StartRequest{Template: fakeTemplate("lines 1"), Lasting: time.Minute})
			return err
		},
		func() error { _, err := rt.Kill(context.Background(), "/tmp/x.trace"); return err },
		func() error { _, err := rt.All(context.Background()); return err },
	} {
		if err := call(); !errors.Is(err, ErrShuttingDown) {
			t.Errorf("after Shutdown: %v, want ErrShuttingDown", err)
		}
	}
}

// TestRunningInfoBytes: in every snapshot of a trace, bytesSubmitted <=
// bytesRead, both only grow, and at the end bytesRead is what the platform
// received.
func TestRunningInfoBytes(t *testing.T) {
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.ChunkSize = 4096 })
	ctx := context.Background()
	// Bursts of 256 lines (36 KiB) every 128 ms, for a second: the sender
	// acknowledges each burst's chunks between two of the pump's reports.
	started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("linewise 280000 2000"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var last messages.RunningInfo
	snapshots, inFlight := 0, 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		info, ok, err := rt.Running(ctx, started.FilePath)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		snapshots++
		if info.BytesSubmitted > info.BytesRead {
			t.Fatalf("snapshot %d: bytesSubmitted %d > bytesRead %d", snapshots, info.BytesSubmitted, info.BytesRead)
		}
		if info.BytesRead < last.BytesRead || info.BytesSubmitted < last.BytesSubmitted || info.ChunksSubmitted < last.ChunksSubmitted {
			t.Fatalf("snapshot %d went back: %+v after %+v", snapshots, info, last)
		}
		if info.BytesSubmitted > 0 && info.BytesSubmitted < info.BytesRead {
			inFlight++
		}
		last = info
		<-tick.C
	}
	rec, err := p.WaitFinished(ctx, started.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	if last.BytesRead > rec.Bytes || rec.Bytes < 280000 {
		t.Errorf("last snapshot read %d; the platform got %d (at least 280000 written)", last.BytesRead, rec.Bytes)
	}
	t.Logf("%d snapshots, %d with output in flight", snapshots, inFlight)
}

// TestLaunchGivenUp: a launcher stuck before it starts anything (the
// kernel holding it, say) is given up on at the launch deadline plus the
// kill grace: the trace ends failed-to-start, the platform gets start and
// finished, its slot is free at once. When the launcher moves on after
// all, it starts nothing and leaves no spool behind (which a restart would
// deliver a second time).
func TestLaunchGivenUp(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	hooks := &testHooks{launchTimeout: 100 * time.Millisecond, onCheckpoint: func(worker, path string) {
		if worker == wLauncher {
			once.Do(func() { <-release })
		}
	}}
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.hooks = hooks })
	finished, unsubscribe := rt.Subscribe(2)
	defer unsubscribe()
	ctx := context.Background()
	started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("ignoreint"), Lasting: time.Minute})
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	var f messages.TraceFinished
	select {
	case f = <-finished:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("a stuck launch was not given up on")
	}
	rec := p.Trace(started.FilePath)
	if f.Reason != messages.ReasonFailedToStart || !strings.Contains(f.Stderr, "did not end within 100ms") ||
		!rec.Started || rec.Finished == nil || rec.ChunkCount != 0 {
		t.Errorf("finished %+v; platform %+v", f, rec)
	}
	if all, err := rt.All(ctx); err != nil || len(all) != 0 {
		t.Errorf("All after the give-up: %v, %v", all, err)
	}
	close(release) // the launcher moves on
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil { // waits for the launcher's goroutine
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.spoolPath(started.FilePath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the given-up launch left its spool: %v", err)
	}
	if pids := fakeTracersOf(started.FilePath); len(pids) != 0 {
		t.Errorf("the given-up launch started tracers %v", pids)
	}
}

// fakeTracersOf lists the fake tracer processes running the script path.
func fakeTracersOf(path string) []string {
	ents, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), path) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestLateStartDoesNotRun: a start the caller gave up on (ErrTimeout: the
// registry was stalled) is refused when the registry reaches it, instead
// of running unknown to anyone.
func TestLateStartDoesNotRun(t *testing.T) {
	type stall struct{}
	release := make(chan struct{})
	hooks := &testHooks{onReceive: func(msg interface{}) {
		if _, ok := msg.(*stall); ok {
			<-release
		}
	}}
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.Timeout = 200 * time.Millisecond; o.hooks = hooks })
	rt.system.Root.Send(rt.registry, &stall{})
	_, err := rt.Start(context.Background(), StartRequest{Template: fakeTemplate("ignoreint"), Lasting: time.Minute})
	close(release)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Start on a stalled registry = %v, want ErrTimeout", err)
	}
	// The registry answers in order: once All answers, the late start
	// was handled.
	var all []messages.RunningInfo
	waitFor(t, func() bool {
		all, err = rt.All(context.Background())
		return err == nil
	})
	if len(all) != 0 || len(p.Traces()) != 0 {
		t.Errorf("the start given up on runs: %+v; the platform heard of %d traces", all, len(p.Traces()))
	}
}
