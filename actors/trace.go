package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
)

// Messages the trace actor's workers, timers and the registry send it.
type (
	// killTrace tells a trace actor to stop its tracer for reason.
	killTrace struct{ reason string }
	// tick is the trace actor's periodic timer: the watchdog, and the place
	// for checks that run while the tracer runs.
	tick struct{}
	// stdoutGrace fires when a tracer exited KillGrace ago and its stdout
	// is still open.
	stdoutGrace struct{}
	// retryWorkers fires when a failed worker may be started again.
	retryWorkers struct{}
	// launchOverdue fires when the launcher has not reported by the
	// launch deadline and the kill grace.
	launchOverdue struct{}

	// launched: the launcher created the spool (sp nil if it could not)
	// and started the tracer (proc nil and err set if it could not).
	launched struct {
		sp     *spool.Spool
		proc   tracerProc
		err    error
		reason string // why the launch failed, when err is set (default failed-to-start)
	}
	// chunkSpooled: the pump read n more bytes of stdout; spooled is the
	// spool's byte count now.
	chunkSpooled struct{ read, spooled, lost int64 }
	// spoolFailed: the spool took no more output (full when at its cap).
	spoolFailed struct {
		err  error
		full bool
	}
	// pumpEnded: stdout is drained and the spool sealed; dropped bytes
	// were read after the spool stopped taking them.
	pumpEnded struct{ dropped int64 }
	// tracerExited: the waiter collected the tracer's exit, and the
	// events it counted lost itself (the native engine's kernel counter).
	tracerExited struct {
		exit tracer.Exit
		lost int64
	}
	// startAcked, chunkAcked, allAcked: the sender's progress (the
	// acknowledged chunks are read from the spool: syncAcked).
	startAcked struct{}
	chunkAcked struct{}
	allAcked   struct{}
	// finalRecorded: the recorder wrote the final state into the spool.
	finalRecorded struct{}
	// delivered: the platform acknowledged the finished message.
	delivered struct{ fin messages.Finish }
	// workerFailed: a worker panicked or ended with an error.
	workerFailed struct {
		name string
		err  error
	}
)

// Worker names.
const (
	wLauncher = "launcher"
	wPump     = "pump"
	wWaiter   = "waiter"
	wSender   = "sender"
	wRecorder = "recorder"
	wFinisher = "finisher"
)

// launchTimeout bounds the start of a tracer: creating its spool and
// forking it, or loading and attaching the native engine's probes.
const launchTimeout = 30 * time.Second

// tickEvery is the trace actor's tick period.
const tickEvery = time.Second

// workerRetry is how long a worker that ended with an error waits before
// it is started again.
const workerRetry = 200 * time.Millisecond

// traceRun is everything of one trace that must outlive a trace actor
// instance: the prepared start, the resources (spool, tracer process,
// worker handles) and the facts the workers reported. The actor's producer
// closes over it; only the actor's mailbox reads or writes it (one
// instance after another, never two at once), so it needs no lock. The
// workers never touch it: they get what they need as arguments and report
// by message.
type traceRun struct {
	meta      runMeta
	command   tracer.Command  // zero for a recovered run
	plan      *native.Plan    // the native engine's trace (Engine native), until launched; nil runs command
	script    string          // script file, removed once the tracer is gone
	recovered bool            // found in the spool at start: deliver only
	binary    binary.Identity // the traced binary as the preflight saw it (zero for a recovered run)

	ctx    context.Context // the workers' context, cancelled when the actor stops
	cancel context.CancelFunc

	// launchCtx bounds the launch (launchTimeout from the first attempt);
	// launchCancel cuts it off early: a kill while the tracer is being
	// started. launchGaveUp: the launcher did not report by the deadline
	// and the kill grace; the run went on without it (launchOverdue).
	launchCtx      context.Context
	launchCancel   context.CancelFunc
	launchDeadline time.Time
	launchGaveUp   bool
	lateDiscarded  bool // what the given-up launcher reported was stopped

	incarnations int
	sp           *spool.Spool
	proc         tracerProc // the tracer process or the native trace
	workers      map[string]*worker

	launchDone     bool
	launchedAt     time.Time
	exit           *tracer.Exit
	exitedAt       time.Time
	pumpDone       bool
	stopReason     string
	bytesRead      int64 // stdout read, as the pump reported it (readBytes)
	spooledSeen    int64 // the spool's byte count, as last seen (readBytes)
	lostEvents     int64 // events the tracer reported it dropped (bpftrace's stdout notices, the native engine's counter)
	dropped        int64
	startAcked     bool
	chunksAcked    int64
	bytesAcked     int64
	ackObserved    int64 // of bytesAcked, what the Observer was told (syncAcked)
	chunksObserved int64 // of chunksAcked, what the Observer was told
	allAcked       bool
	final          *finalState
	finalRecorded  bool
	delivered      bool
}

func (r *traceRun) path() string { return r.meta.Path }

// traceActor is the actor of one trace; the run it owns is r. The instance
// holds only its timers: a restart rebuilds what it needs from r, the spool
// and the tracer process.
type traceActor struct {
	rt      *Runtime
	r       *traceRun
	self    *actor.PID
	ticker  *time.Timer
	grace   *time.Timer
	retry   *time.Timer
	overdue *time.Timer
}

// Receive is the only writer of the run. It never blocks: exec, reads,
// fsyncs and submissions are done by workers; what Receive does is
// bookkeeping, signalling the tracer (kill(2), non-blocking) and starting
// workers.
func (a *traceActor) Receive(ctx actor.Context) {
	r, rt := a.r, a.rt
	a.self = ctx.Self()
	rt.opts.hooks.receive(ctx.Message())
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.incarnations++
		if r.incarnations > 1 {
			rt.log.Warn("trace actor restarted; the tracer, spool and workers carry on", "trace_path", r.path())
			a.resync(ctx)
			if r.exit != nil && !r.pumpDone && r.proc != nil {
				a.grace = a.after(ctx, rt.opts.KillGrace, &stdoutGrace{})
			}
			a.armOverdue(ctx)
		}
		a.armTick(ctx)
	case *killTrace:
		rt.log.Info("stopping trace", "trace_path", r.path(), "reason", msg.reason)
		a.stop(msg.reason)
	case *tick:
		a.ticker = nil
		a.onTick()
		a.armTick(ctx)
	case *stdoutGrace:
		a.grace = nil
		if r.proc != nil && !r.pumpDone {
			// Something the tracer started still holds stdout open (it
			// escaped the kill: no cgroup and a session of its own).
			// Stop reading so the pump ends; what it read is spooled.
			rt.log.Warn("tracer exited but its stdout stays open; closing it", "trace_path", r.path())
			if err := r.proc.CloseStdout(); err != nil {
				rt.log.Warn("closing tracer stdout", "trace_path", r.path(), "err", err)
			}
		}
	case *retryWorkers:
		a.retry = nil
	case *launched:
		if r.launchDone {
			if r.launchGaveUp && !r.lateDiscarded && (msg.proc != nil || msg.sp != nil) {
				r.lateDiscarded = true
				a.discardLate(msg)
			}
			break // or a repeat after a restart
		}
		a.onLaunched(msg)
	case *launchOverdue:
		a.overdue = nil
		if !r.launchDone {
			d := rt.opts.hooks.launchDeadline()
			rt.log.Error("starting the tracer did not end in time; the trace ends without it", "trace_path", r.path(),
				"launch_timeout", d.String())
			r.launchCancel()
			a.onLaunched(&launched{err: fmt.Errorf("starting the tracer: did not end within %s", d)})
			r.launchGaveUp = true
		}
	case *chunkSpooled:
		r.bytesRead += msg.read
		r.spooledSeen = max(r.spooledSeen, msg.spooled)
		rt.opts.Observer.OutputRead(r.event(), msg.read)
		if msg.lost > 0 {
			r.lostEvents += msg.lost
			rt.opts.Observer.LostEvents(r.event(), msg.lost)
		}
	case *spoolFailed:
		if msg.full {
			rt.log.Error("spool full: stopping trace", "trace_path", r.path(), "max_bytes", rt.opts.Spool.MaxBytes)
			a.stop(messages.ReasonSpoolFull)
		} else {
			rt.log.Error("appending to spool: stopping trace", "trace_path", r.path(), "err", msg.err)
			a.stop(messages.ReasonSpoolError)
		}
	case *pumpEnded:
		if r.pumpDone {
			break
		}
		r.pumpDone = true
		r.dropped += msg.dropped
		if msg.dropped > 0 {
			rt.log.Warn("tracer output dropped after the spool stopped taking it",
				"trace_path", r.path(), "dropped_bytes", r.dropped)
		}
	case *tracerExited:
		if r.exit == nil {
			a.setExit(msg.exit, msg.lost)
			if !r.pumpDone {
				a.grace = a.after(ctx, rt.opts.KillGrace, &stdoutGrace{})
			}
		}
	case *startAcked:
		r.startAcked = true
	case *chunkAcked:
		a.syncAcked()
	case *allAcked:
		r.allAcked, r.startAcked = true, true
		a.syncAcked()
	case *finalRecorded:
		if r.finalRecorded {
			break
		}
		r.finalRecorded = true
		rt.recordRun(r, persistence.RunDelivering)
	case *delivered:
		a.onDelivered(ctx, msg.fin)
		return
	case *workerFailed:
		rt.log.Error("trace worker failed; starting it again", "trace_path", r.path(), "worker", msg.name, "err", msg.err)
		if w := r.workers[msg.name]; w != nil && w.ended() {
			w.notBefore = time.Now().Add(workerRetry)
			if a.retry == nil {
				a.retry = a.after(ctx, workerRetry, &retryWorkers{})
			}
		}
	case *actor.Restarting:
		a.stopTimers()
		return
	case *actor.Stopping:
		a.stopTimers()
		a.release()
		return
	case *actor.Stopped:
		return
	default:
		return
	}
	a.advance(ctx)
	rt.report(ctx, r)
}

// onLaunched takes the launcher's report.
func (a *traceActor) onLaunched(msg *launched) {
	r, rt := a.r, a.rt
	r.launchDone = true
	r.launchCancel()
	if a.overdue != nil {
		a.overdue.Stop()
		a.overdue = nil
	}
	r.sp, r.proc = msg.sp, msg.proc
	if msg.err != nil {
		rt.log.Error("starting trace", "trace_path", r.path(), "err", msg.err)
		if r.stopReason == "" { // a kill while starting keeps its reason
			r.stopReason = messages.ReasonFailedToStart
			if msg.reason != "" {
				r.stopReason = msg.reason
			}
		}
		r.exit = &tracer.Exit{Code: 127, Stderr: msg.err.Error()}
		r.exitedAt = time.Now().UTC()
		r.pumpDone = true
		if r.sp == nil {
			r.allAcked = true // nothing was spooled; the finisher sends start too
		}
	} else {
		r.launchedAt = time.Now()
		rt.log.Info("tracer started", "trace_path", r.path(), "pid", r.proc.PID(), "thread", r.meta.Thread,
			"engine", r.meta.engine())
		if lerr := r.proc.LimitsErr(); lerr != nil {
			rt.limitsWarned.Do(func() {
				rt.log.Warn("tracers run without memory and pids limits (tracer-limits = best-effort)", "err", lerr)
			})
		}
		rt.opts.Observer.TraceStarted(r.event())
		if r.stopReason != "" { // killed before it was launched
			r.proc.Stop(rt.opts.KillGrace)
		}
	}
	rt.recordRun(r, persistence.RunRunning)
}

// discardLate ends what a launcher the run gave up on reports after all:
// its tracer is killed (and reaped), its spool, which nothing was ever
// acknowledged from, removed.
func (a *traceActor) discardLate(msg *launched) {
	rt, path := a.rt, a.r.path()
	rt.log.Warn("late launcher report: stopping what it started", "trace_path", path)
	if p := msg.proc; p != nil {
		p.Kill()
		rt.goroutine("late-tracer-reaper", func() { p.Wait() })
	}
	if sp := msg.sp; sp != nil {
		if err := sp.Remove(); err != nil {
			rt.log.Warn("removing the spool of a late launch", "trace_path", path, "err", err)
		}
	}
}

// armOverdue arms the timer that gives up on the launcher once the launch
// deadline and the kill grace have passed.
func (a *traceActor) armOverdue(ctx actor.Context) {
	if a.overdue == nil && !a.r.launchDone && !a.r.launchDeadline.IsZero() {
		a.overdue = a.after(ctx, time.Until(a.r.launchDeadline)+a.rt.opts.KillGrace, &launchOverdue{})
	}
}

// advance moves the run on: it works out what is known now and makes sure
// the worker for each outstanding step runs. It is idempotent, which is
// what makes a restart (of the actor or of any worker) safe: the steps are
// the same whoever asks again.
func (a *traceActor) advance(ctx actor.Context) {
	r, rt := a.r, a.rt
	if r.ctx.Err() != nil || r.delivered {
		return
	}
	if !r.launchDone {
		if r.launchCtx == nil {
			r.launchDeadline = time.Now().Add(rt.opts.hooks.launchDeadline())
			r.launchCtx, r.launchCancel = context.WithDeadline(r.ctx, r.launchDeadline)
			a.armOverdue(ctx)
		}
		lctx, plan := r.launchCtx, r.plan
		a.ensure(wLauncher, func(post func(interface{})) error {
			return launch(r.ctx, lctx, rt, r.meta, r.command, plan, r.binary, post)
		})
		return
	}
	if r.proc != nil && !r.pumpDone {
		sp, proc := r.sp, r.proc
		// bpftrace's own lines on stdout; the native engine prints none.
		notices := r.meta.Info.TraceType == messages.BPF && r.meta.engine() != messages.EngineNative
		a.ensure(wPump, func(post func(interface{})) error { return pump(rt, r.event(), sp, proc, notices, post) })
	}
	if r.proc != nil && r.exit == nil {
		proc := r.proc
		a.ensure(wWaiter, func(post func(interface{})) error {
			exit := proc.Wait()
			rt.opts.hooks.checkpoint(wWaiter, r.path())
			post(&tracerExited{exit: exit, lost: lostEventsOf(proc)})
			return nil
		})
	}
	if r.sp != nil && !r.allAcked {
		sp, started := r.sp, r.startAcked
		a.ensure(wSender, func(post func(interface{})) error { return send(r.ctx, rt, r.path(), sp, started, post) })
	}
	if r.final == nil && r.exit != nil && r.pumpDone {
		reason := endReason(r.stopReason, *r.exit)
		stderr := r.exit.Stderr
		if r.dropped > 0 {
			stderr += fmt.Sprintf("\nlambda-endpoint: %d bytes of output dropped after the spool stopped taking them\n", r.dropped)
		}
		r.final = &finalState{Reason: reason, Code: r.exit.Code, Stderr: stderr, EndedAt: r.exitedAt, LostEvents: r.lostEvents}
		switch reason {
		case messages.ReasonFailed, messages.ReasonFailedToStart, messages.ReasonMemoryLimit, messages.ReasonSpoolError:
			// What an operator needs to act on: the end of the tracer's
			// own explanation.
			rt.log.Warn("tracer failed", "trace_path", r.path(), "reason", reason, "code", r.exit.Code,
				"stderr_tail", stderrTail(stderr, 2048))
		}
		a.removeScript()
		if a.grace != nil {
			a.grace.Stop()
			a.grace = nil
		}
	}
	if r.final != nil && !r.finalRecorded {
		if r.sp == nil {
			r.finalRecorded = true
			rt.recordRun(r, persistence.RunDelivering)
		} else {
			sp, meta := r.sp, r.meta
			meta.Final = r.final
			a.ensure(wRecorder, func(post func(interface{})) error {
				b, err := json.Marshal(meta)
				if err == nil {
					err = sp.SetMeta(b)
				}
				if err != nil {
					return fmt.Errorf("recording final state in spool: %w", err)
				}
				post(&finalRecorded{})
				return nil
			})
		}
	}
	if r.finalRecorded && r.allAcked {
		sp, final, started := r.sp, *r.final, r.startAcked
		a.ensure(wFinisher, func(post func(interface{})) error {
			return finish(r.ctx, rt, r.path(), sp, final, started, post)
		})
	}
}

// resync rebuilds, after a restart of the actor, what the message that
// panicked may have carried: facts the process and the spool still tell.
func (a *traceActor) resync(ctx actor.Context) {
	r := a.r
	// The last report of a worker that has ended may be the message that
	// was dropped: have it again (every handler takes a repeat).
	for _, w := range r.workers {
		if w.ended() && w.ok && w.last != nil {
			ctx.Send(ctx.Self(), w.last)
		}
	}
	if r.proc != nil && r.exit == nil {
		select {
		case <-r.proc.Done():
			a.setExit(r.proc.Wait(), lostEventsOf(r.proc))
		default:
		}
	}
	if r.sp != nil && r.sp.Acked() > 0 {
		r.startAcked = true
	}
	a.syncAcked()
}

// syncAcked takes the acknowledged position from the spool, which the
// sender updates before it reports (and reports at most every reportEvery
// while chunks keep coming), and tells the Observer what was acknowledged
// since it was last told: every acknowledged byte exactly once, whichever
// message brought the actor here.
func (a *traceActor) syncAcked() {
	r := a.r
	if r.sp != nil && r.sp.Acked() > r.chunksAcked {
		r.chunksAcked, r.bytesAcked = r.sp.Acked(), r.sp.AckedBytes()
		// Read after the acknowledged bytes: the spool holds at least
		// those (RunningInfo: bytesSubmitted <= bytesRead).
		r.spooledSeen = max(r.spooledSeen, r.sp.Bytes())
	}
	if c, d := r.chunksAcked-r.chunksObserved, r.bytesAcked-r.ackObserved; c > 0 || d > 0 {
		r.chunksObserved, r.ackObserved = r.chunksAcked, r.bytesAcked
		a.rt.opts.Observer.ChunkAcked(r.event(), c, d)
		if d > 0 {
			a.rt.opts.Observer.SpoolBytes(r.event(), -d)
		}
	}
}

// stop asks the tracer to end for reason (the first reason given wins):
// SIGINT to its whole tree, SIGKILL after the kill grace. Stop only sends
// signals and arms a timer.
func (a *traceActor) stop(reason string) {
	r := a.r
	if r.stopReason == "" && r.exit == nil {
		r.stopReason = reason
	}
	if r.proc != nil && r.exit == nil {
		r.proc.Stop(a.rt.opts.KillGrace)
	}
	if !r.launchDone && r.launchCancel != nil {
		// Still starting: cut the start off (the launcher reports it, and
		// the run ends with this reason).
		r.launchCancel()
	}
}

// onTick is the periodic check of a running trace: the watchdog kills a
// tracer that outlived its lasting plus the kill grace. Checks that must
// run while a tracer runs (such as whether the traced binary changed) go
// here.
func (a *traceActor) onTick() {
	r := a.r
	if r.proc == nil || r.exit != nil {
		return
	}
	// From the launch, not the acceptance: a loaded host may take seconds
	// to get the tracer going.
	deadline := r.launchedAt.Add(time.Duration(r.meta.Lasting)*time.Second + a.rt.opts.KillGrace)
	if time.Now().After(deadline) && r.stopReason == "" {
		// SIGINT first (a summary trace prints its result), SIGKILL
		// after the grace.
		a.rt.log.Warn("tracer outlived its lasting; stopping it", "trace_path", r.path(), "lasting_seconds", r.meta.Lasting)
		a.stop(messages.ReasonTimedOut)
	}
	// The traced path must still name the binary the preflight checked
	// (one stat: bounded). bpftrace and stap resolve the path when they
	// attach, so a file swapped in before that would be probed in place of
	// the checked one; uprobes stay on their inode after the attach, but
	// the trace is stopped all the same so that the platform knows.
	if r.binary != (binary.Identity{}) && r.stopReason == "" {
		if err := r.binary.Check(r.meta.Info.Process); err != nil {
			a.rt.log.Warn("traced binary changed; stopping the trace", "trace_path", r.path(),
				"process", r.meta.Info.Process, "err", err)
			a.stop(messages.ReasonBinaryChanged)
		}
	}
}

// onDelivered ends the run: the platform has everything.
func (a *traceActor) onDelivered(ctx actor.Context, fin messages.Finish) {
	r, rt := a.r, a.rt
	if r.delivered {
		return
	}
	r.delivered = true
	rt.recordRunFinished(r, fin)
	rt.opts.Observer.TraceFinished(r.event(), r.finished(fin))
	rt.log.Info("trace delivered", "trace_path", r.path(), "reason", r.final.Reason, "code", r.final.Code,
		"chunks", fin.Chunks, "bytes", fin.Bytes)
	ctx.Send(rt.registry, &traceDelivered{path: r.path(), finished: r.finished(fin)})
	r.cancel()
	ctx.Stop(ctx.Self())
}

// release frees the run's resources when the actor stops for good
// (delivered, shutdown, or too many restarts): the workers are cancelled,
// the tracer is killed, and an undelivered spool is closed for the next
// start once the pump is done with it.
func (a *traceActor) release() {
	r, rt := a.r, a.rt
	r.cancel()
	if r.proc != nil && r.exit == nil {
		r.proc.Kill()
	}
	if r.plan != nil {
		// Plan.Start closes the plan's binary: close it here only when no
		// launcher can still be using it.
		if w := r.workers[wLauncher]; w == nil || w.ended() {
			r.plan.Close()
		}
		r.plan = nil
	}
	if r.delivered || r.sp == nil {
		a.removeScript()
		return
	}
	sp, path := r.sp, r.path()
	r.sp = nil
	closeSpool := func() {
		if err := sp.Close(); err != nil && !errors.Is(err, spool.ErrClosed) {
			rt.log.Error("closing spool", "trace_path", path, "err", err)
		}
	}
	a.removeScript()
	if pump := r.workers[wPump]; pump != nil && !pump.ended() {
		// The tracer is being killed: close once the pump has drained it.
		rt.goroutine("spool-closer", func() { <-pump.done; closeSpool() })
		return
	}
	// Bounded: Close writes the spool's state once (at shutdown, after
	// every worker ended).
	closeSpool()
}

func (a *traceActor) removeScript() {
	r := a.r
	if r.script == "" {
		return
	}
	if err := os.Remove(r.script); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.rt.log.Warn("removing trace script", "path", r.script, "err", err)
	}
	r.script = ""
}

// ensure starts worker name running f unless it runs, or failed a moment
// ago (it is started again once its retry time has come).
func (a *traceActor) ensure(name string, f func(post func(interface{})) error) {
	r := a.r
	// A worker that ended normally is never started again: its result is
	// in the mailbox (or, after an actor restart, sent again by resync).
	if w := r.workers[name]; w != nil && (!w.ended() || w.ok || time.Now().Before(w.notBefore)) {
		return
	}
	r.workers[name] = a.rt.startWorker(r.ctx, name, r.path(), a.self, f)
}

func (a *traceActor) armTick(ctx actor.Context) {
	if a.ticker == nil && !a.r.delivered {
		a.ticker = a.after(ctx, tickEvery, &tick{})
	}
}

func (a *traceActor) after(ctx actor.Context, d time.Duration, msg interface{}) *time.Timer {
	self, root := ctx.Self(), a.rt.system.Root
	return time.AfterFunc(d, func() { root.Send(self, msg) })
}

func (a *traceActor) stopTimers() {
	for _, t := range []**time.Timer{&a.ticker, &a.grace, &a.retry, &a.overdue} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

// setExit records how the launched tracer ended (once), with the events it
// counted lost itself (the native engine).
func (a *traceActor) setExit(e tracer.Exit, lost int64) {
	r := a.r
	r.exit, r.exitedAt = &e, time.Now().UTC()
	if lost > 0 {
		r.lostEvents += lost
		a.rt.opts.Observer.LostEvents(r.event(), lost)
	}
	a.rt.opts.Observer.TracerExited(r.event())
}
