package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Messages only the runtime's own actors and goroutines exchange.
type (
	// killTrace tells a trace actor to stop its tracer for reason.
	killTrace struct{ reason string }
	// watchdog fires when a tracer outlived its lasting plus grace.
	watchdog struct{}
	// tracerExited tells the trace actor its tracer is gone.
	tracerExited struct{}
	// traceDelivered tells the registry a run owes the platform nothing.
	traceDelivered struct {
		path     string
		finished messages.TraceFinished
	}
	// shutdownAll tells the registry to stop every tracer and take no new
	// traces. Answered with *shutdownAck.
	shutdownAll struct{}
	shutdownAck struct{ traces int }
	// crash makes a trace actor panic: the supervision tests' fault.
	crash struct{ path string }
	// stall blocks the registry's mailbox: the timeout tests' fault.
	stall struct{ d time.Duration }
)

// traceActor is the actor of one trace. Its state is the run, which
// survives restarts; the instance itself holds only the watchdog timer.
type traceActor struct {
	run   *run
	timer *time.Timer
}

func newTraceActor(r *run) actor.Actor { return &traceActor{run: r} }

// Receive handles the trace's lifecycle. It never blocks: the tracer's
// output, exit and delivery are handled by the run's goroutines.
func (a *traceActor) Receive(ctx actor.Context) {
	r := a.run
	log := r.rt.log
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.self.Store(ctx.Self())
		a.armWatchdog(ctx)
		r.mu.Lock()
		first := !r.started
		r.started = true
		r.mu.Unlock()
		if !first {
			log.Warn("trace actor restarted; the tracer and spool carry on", "trace_path", r.path())
			return
		}
		if r.recovered {
			r.rt.goroutine("sender", r.deliver)
			return
		}
		if err := r.launch(); err != nil {
			// No spool: nothing can be delivered. Report and let the
			// registry forget the trace.
			log.Error("starting trace", "trace_path", r.path(), "err", err)
			r.removeScript()
			ctx.Send(r.rt.registry, &traceDelivered{path: r.path(), finished: messages.TraceFinished{
				Thread: r.meta.Thread, FilePath: r.path(), TraceNo: r.meta.TraceNo,
				Reason: messages.ReasonFailedToStart, Code: 127, Stderr: err.Error(),
				StartedAt: r.meta.StartedAt, EndedAt: time.Now().UTC(),
			}})
		}
	case *killTrace:
		log.Info("stopping trace", "trace_path", r.path(), "reason", msg.reason)
		r.stop(msg.reason)
	case *watchdog:
		if r.alive() {
			log.Warn("tracer outlived its lasting; killing it", "trace_path", r.path(), "lasting_seconds", r.meta.Lasting)
			r.stop(messages.ReasonTimedOut)
		}
	case *tracerExited:
		a.disarm()
		log.Debug("tracer exited", "trace_path", r.path())
	case *crash:
		panic(fmt.Sprintf("injected crash in trace actor %s", r.path()))
	case *actor.Restarting, *actor.Stopping:
		a.disarm()
	case *actor.Stopped:
	}
}

// armWatchdog schedules a watchdog message for lasting plus the kill grace
// after the trace started (a restart re-arms it for the time left).
func (a *traceActor) armWatchdog(ctx actor.Context) {
	r := a.run
	if !r.alive() || a.timer != nil {
		return
	}
	deadline := r.meta.StartedAt.Add(time.Duration(r.meta.Lasting)*time.Second + r.rt.opts.KillGrace)
	self, root := ctx.Self(), r.rt.system.Root
	a.timer = time.AfterFunc(time.Until(deadline), func() { root.Send(self, &watchdog{}) })
}

func (a *traceActor) disarm() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}
