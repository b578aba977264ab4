package actors

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

const undeliveredLog = "trace actor stopped before its trace was delivered"

// TestDeliveredThenStopped: a trace actor sends traceDelivered and then
// stops, so the registry gets its stop notice (a system message, which the
// mailbox hands over before every queued user message) while the
// traceDelivered may still wait in its mailbox. The test makes that happen
// every time: the registry is held in a ListRunning from the finisher's
// checkpoint (finished accepted, traceDelivered not yet sent) until the
// actor's stop notice has been sent to it. protoactor notifies watchers in
// the order they watched, so once a watcher spawned after the registry's
// watch hears of the stop, the registry's notice is queued too. The
// delivered trace must log no ERROR.
func TestDeliveredThenStopped(t *testing.T) {
	var (
		once     sync.Once
		held     = make(chan struct{}) // the registry is in the ListRunning
		release  = make(chan struct{}) // the stop notice is queued: let it go
		gone     = make(chan struct{}, 1)
		rtp      *Runtime
		rtMu     sync.Mutex
		released bool
	)
	hooks := &testHooks{
		onCheckpoint: func(worker, path string) {
			if worker != wFinisher {
				return
			}
			rtMu.Lock()
			rt := rtp
			rtMu.Unlock()
			go rt.All(context.Background()) // answered once released (or times out)
			<-held
		},
		onReceive: func(msg interface{}) {
			switch msg.(type) {
			case *messages.ListRunning:
				armed := false
				once.Do(func() { armed = true })
				if !armed {
					return
				}
				close(held)
				select {
				case <-release:
					released = true
				case <-time.After(30 * time.Second): // a safety net only: the test fails below
				}
			case *traceGone:
				select {
				case gone <- struct{}{}:
				default:
				}
			}
		},
	}
	rt, p, logs := newTestRuntime(t, func(o *Options) { o.hooks = hooks; o.CgroupParent = "-" })
	rtMu.Lock()
	rtp = rt
	rtMu.Unlock()
	ctx := context.Background()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("lines 3 10ms"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Watch the trace actor after the registry did. The watch is queued
	// in the actor's system mailbox once the watcher has handled Started
	// (before the ping's answer), so the actor handles it before the
	// finisher's report that makes it stop.
	tracePID := rt.system.NewLocalPID("trace-" + strings.TrimSuffix(filepath.Base(s.FilePath), ".trace"))
	watcher := rt.system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Watch(tracePID)
		case *actor.Terminated:
			close(release)
		case string:
			c.Respond("ok")
		}
	}))
	defer rt.system.Root.Stop(watcher)
	if _, err := rt.system.Root.RequestFuture(watcher, "ping", 10*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := p.WaitFinished(wctx, s.FilePath); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone: // the registry has looked again behind the traceDelivered
	case <-wctx.Done():
		t.Fatal("the registry never handled the actor's stop")
	}
	if !released {
		t.Fatal("the registry was not held until the actor's stop notice was queued")
	}
	if _, ok, err := rt.Running(ctx, s.FilePath); err != nil || ok {
		t.Errorf("the delivered trace is still listed: %v, %v", ok, err)
	}
	if strings.Contains(logs.String(), undeliveredLog) {
		t.Errorf("a delivered trace logged %q", undeliveredLog)
	}
}
