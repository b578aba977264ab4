package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

// RunStore records the history of runs. persistence.Store implements it.
// Its failures never stop a trace: they are logged and the trace goes on.
type RunStore interface {
	CreateRun(ctx context.Context, r persistence.Run) error
	UpdateRun(ctx context.Context, r persistence.Run) error
}

// runMeta is what a run's spool remembers across endpoint restarts.
type runMeta struct {
	Path       string                `json:"path"`
	Thread     int64                 `json:"thread"`
	TraceNo    int64                 `json:"traceNo"`
	Info       messages.TemplateInfo `json:"info"`
	Mode       messages.Mode         `json:"mode"`
	StartedAt  time.Time             `json:"startedAt"`
	Lasting    int64                 `json:"lasting"`
	StartAcked bool                  `json:"startAcked"`
	Final      *finalState           `json:"final,omitempty"`
}

// finalState is how the tracer ended.
type finalState struct {
	Reason  string    `json:"reason"`
	Code    int       `json:"code"`
	Stderr  string    `json:"stderr"`
	EndedAt time.Time `json:"endedAt"`
}

// run is one trace's state. It outlives any one trace actor instance: the
// actor's producer closes over it, so a restarted actor finds the same
// process, spool and counters. Fields under mu are shared with the run's
// goroutines; the rest is set before they start.
type run struct {
	rt      *Runtime
	script  string // script file path, removed when the tracer is gone
	command tracer.Command

	mu        sync.Mutex
	meta      runMeta
	state     string
	reason    string // why the tracer is being stopped, if it is
	proc      *tracer.Process
	sp        *spool.Spool
	started   bool // the actor launched (or resumed) this run
	recovered bool // found in the spool at start: deliver only

	bytesRead       atomic.Int64
	bytesDropped    atomic.Int64
	bytesSubmitted  atomic.Int64
	chunksSubmitted atomic.Int64

	self     atomic.Pointer[actor.PID] // the trace actor, for the goroutines' messages
	exited   chan struct{}             // closed once meta.Final is set
	pumpDone chan struct{}             // closed when stdout is drained and the spool sealed
	ctx      context.Context           // cancelled when the runtime stops
	cancel   context.CancelFunc
}

func newRun(rt *Runtime, meta runMeta, script string, cmd tracer.Command) *run {
	ctx, cancel := context.WithCancel(rt.ctx)
	return &run{
		rt:       rt,
		script:   script,
		command:  cmd,
		meta:     meta,
		state:    messages.StateStarting,
		exited:   make(chan struct{}),
		pumpDone: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
}

func (r *run) path() string { return r.meta.Path }

// alive reports whether the run's tracer may still be running: it counts
// against the concurrent trace limit.
func (r *run) alive() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// snapshot is the RunningInfo of the run now.
func (r *run) snapshot() messages.RunningInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := messages.RunningInfo{
		TemplateInfo:    r.meta.Info,
		TraceNo:         r.meta.TraceNo,
		Thread:          r.meta.Thread,
		FilePath:        r.meta.Path,
		StartedAt:       r.meta.StartedAt,
		Lasting:         r.meta.Lasting,
		Mode:            r.meta.Mode,
		State:           r.state,
		BytesRead:       r.bytesRead.Load(),
		BytesSubmitted:  r.bytesSubmitted.Load(),
		ChunksSubmitted: r.chunksSubmitted.Load(),
		Reason:          r.reason,
	}
	if r.meta.Final != nil {
		info.Reason = r.meta.Final.Reason
	}
	if r.proc != nil && r.alive() {
		info.PID = r.proc.PID()
	}
	return info
}

// stop asks the tracer to end for reason (the first reason given wins):
// SIGINT to its whole tree, SIGKILL after the kill grace.
func (r *run) stop(reason string) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason = reason
	}
	proc := r.proc
	r.mu.Unlock()
	if proc != nil {
		proc.Stop(r.rt.opts.KillGrace)
	}
}

// notify sends msg to the run's trace actor.
func (r *run) notify(msg interface{}) {
	if pid := r.self.Load(); pid != nil {
		r.rt.system.Root.Send(pid, msg)
	}
}

// launch creates the spool, starts the tracer and the run's goroutines. It
// runs once, from the trace actor's first Started. A tracer that cannot be
// launched ends the run with reason failed-to-start; the platform still gets
// start and finished.
func (r *run) launch() error {
	meta, err := json.Marshal(r.meta)
	if err != nil {
		return fmt.Errorf("encoding run meta: %w", err)
	}
	sp, err := spool.Create(r.rt.spoolPath(r.meta.Path), meta, r.rt.opts.Spool)
	if err != nil {
		return fmt.Errorf("creating spool: %w", err)
	}
	r.mu.Lock()
	r.sp = sp
	r.mu.Unlock()
	r.rt.recordRun(r, persistence.RunRunning)

	proc, err := tracer.Start(r.ctx, r.command)
	if err != nil {
		r.rt.log.Error("launching tracer", "trace_path", r.path(), "err", err)
		close(r.pumpDone)
		if serr := sp.Seal(); serr != nil {
			r.rt.log.Error("sealing spool", "trace_path", r.path(), "err", serr)
		}
		r.finish(finalState{Reason: messages.ReasonFailedToStart, Code: 127, Stderr: err.Error(), EndedAt: time.Now().UTC()})
		r.rt.goroutine("sender", r.deliver)
		return nil
	}
	r.mu.Lock()
	r.proc = proc
	r.state = messages.StateRunning
	r.mu.Unlock()
	r.rt.log.Info("tracer started", "trace_path", r.path(), "pid", proc.PID(), "thread", r.meta.Thread)
	if lerr := proc.LimitsErr(); lerr != nil {
		r.rt.limitsWarned.Do(func() {
			r.rt.log.Warn("tracers run without memory and pids limits (tracer-limits = best-effort)", "err", lerr)
		})
	}
	r.rt.goroutine("pump", func() { r.pump(proc) })
	r.rt.goroutine("waiter", func() { r.wait(proc) })
	r.rt.goroutine("sender", r.deliver)
	return nil
}

// wait collects the tracer's exit, once its stdout is drained, and records
// the final state.
func (r *run) wait(proc *tracer.Process) {
	exit := proc.Wait()
	select {
	case <-r.pumpDone:
	case <-time.After(r.rt.opts.KillGrace):
		// Something the tracer started still holds stdout open (it
		// escaped the kill: no cgroup and a session of its own). Stop
		// reading so the pump ends; what it wrote so far is spooled.
		r.rt.log.Warn("tracer exited but its stdout stays open; closing it", "trace_path", r.path())
		if err := proc.CloseStdout(); err != nil {
			r.rt.log.Warn("closing tracer stdout", "trace_path", r.path(), "err", err)
		}
		<-r.pumpDone
	}
	r.mu.Lock()
	reason := r.reason
	r.mu.Unlock()
	if reason == "" && exit.OOMKilled {
		reason = messages.ReasonMemoryLimit
	}
	if reason == "" {
		reason = messages.ReasonCompleted
	}
	r.finish(finalState{Reason: reason, Code: exit.Code, Stderr: exit.Stderr, EndedAt: time.Now().UTC()})
	r.notify(&tracerExited{})
}

// finish records how the tracer ended, durably, and releases the sender.
func (r *run) finish(f finalState) {
	r.mu.Lock()
	r.meta.Final = &f
	r.state = messages.StateDelivering
	sp := r.sp
	meta, err := json.Marshal(r.meta)
	r.mu.Unlock()
	if err == nil {
		err = sp.SetMeta(meta)
	}
	if err != nil {
		r.rt.log.Error("recording final state in spool", "trace_path", r.path(), "err", err)
	}
	r.removeScript()
	// Queued before the sender is released, so that this row never
	// overtakes the finished one.
	r.rt.recordRun(r, persistence.RunDelivering)
	close(r.exited)
}

func (r *run) removeScript() {
	if r.script == "" {
		return
	}
	if err := os.Remove(r.script); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.rt.log.Warn("removing trace script", "path", r.script, "err", err)
	}
}

// deliver sends start, every chunk in order, then finished, each retried
// until acknowledged. It returns early only when the runtime stops; the
// spool keeps what was not delivered.
func (r *run) deliver() {
	ctx, sub, path := r.ctx, r.rt.opts.Submitter, r.path()
	r.mu.Lock()
	startAcked, sp := r.meta.StartAcked, r.sp
	r.mu.Unlock()
	delivered := false
	defer func() {
		if delivered {
			return
		}
		// The runtime is stopping: keep the spool for the next start,
		// once the pump is done with it (the tracer is being killed).
		<-r.pumpDone
		if err := sp.Close(); err != nil {
			r.rt.log.Error("closing spool", "trace_path", path, "err", err)
		}
	}()
	if !startAcked {
		if err := sub.Start(ctx, path); err != nil {
			return
		}
		r.mu.Lock()
		r.meta.StartAcked = true
		meta, _ := json.Marshal(r.meta)
		r.mu.Unlock()
		if err := sp.SetMeta(meta); err != nil {
			r.rt.log.Error("recording start acknowledgement", "trace_path", path, "err", err)
		}
	}
	for {
		no := sp.Acked()
		if err := sp.Wait(ctx, no); err != nil {
			if err == io.EOF { // sealed: every chunk is acknowledged
				break
			}
			return
		}
		data, err := sp.Read(no)
		if err != nil {
			r.rt.log.Error("reading spooled chunk", "trace_path", path, "no", no, "err", err)
			return
		}
		if err := sub.Chunk(ctx, path, no, data); err != nil {
			return
		}
		if err := sp.Ack(no); err != nil {
			r.rt.log.Error("recording chunk acknowledgement", "trace_path", path, "no", no, "err", err)
			return
		}
		r.chunksSubmitted.Add(1)
		r.bytesSubmitted.Add(int64(len(data)))
	}
	select {
	case <-r.exited:
	case <-ctx.Done():
		return
	}
	r.mu.Lock()
	final := *r.meta.Final
	r.mu.Unlock()
	fin := platformFinish(final, sp)
	if err := sub.Finished(ctx, path, fin); err != nil {
		return
	}
	delivered = true
	r.rt.recordRunFinished(r, final, fin)
	if err := sp.Remove(); err != nil {
		r.rt.log.Error("removing delivered spool", "trace_path", path, "err", err)
	}
	r.rt.log.Info("trace delivered", "trace_path", path, "reason", final.Reason, "code", final.Code,
		"chunks", fin.Chunks, "bytes", fin.Bytes)
	r.rt.system.Root.Send(r.rt.registry, &traceDelivered{path: path, finished: messages.TraceFinished{
		Thread: r.meta.Thread, FilePath: path, TraceNo: r.meta.TraceNo, Reason: final.Reason,
		Code: final.Code, Stderr: final.Stderr, Bytes: fin.Bytes, Chunks: fin.Chunks,
		StartedAt: r.meta.StartedAt, EndedAt: final.EndedAt,
	}})
}
