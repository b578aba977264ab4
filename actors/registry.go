package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Messages of the registry.
type (
	// begin is the registry's first message, sent by New once the
	// registry's PID is known: it spawns the recovered runs' actors.
	begin struct{}
	// traceStatus: a trace actor's snapshot of its run, pushed after every
	// change.
	traceStatus struct {
		info  messages.RunningInfo
		alive bool
	}
	// traceDelivered: a run owes the platform nothing.
	traceDelivered struct {
		path     string
		finished messages.TraceFinished
	}
	// traceGone: the actor of the trace at path has stopped. The registry
	// sends it to itself on the actor's Terminated, to look at the trace
	// again behind the messages the actor sent before it stopped.
	traceGone struct{ path string }
	// shutdownAll: stop every tracer and take no new traces. The sender
	// gets *shutdownDone once no trace is left (delivered, or its actor
	// stopped).
	shutdownAll  struct{}
	shutdownDone struct{}
	// listActors asks for the PIDs of the trace actors; the reply is
	// *actorList.
	listActors struct{}
	actorList  struct{ pids []*actor.PID }
	// startTrace is a start request as Runtime.Start hands it over: its
	// engine resolved and, for the native engine, its plan made (the binary
	// opened, checked and disassembled in the caller's goroutine, never in
	// the registry's mailbox). The registry owns plan from then on: it
	// closes it when it refuses the start, the trace's run when it ends.
	startTrace struct {
		ctx    context.Context // the caller's: its end stops the trace
		req    messages.StartTrace
		engine messages.Engine
		plan   *native.Plan
		// checked is the preflight's result of a bpftrace or stap start
		// (Runtime.checkBinary); nil for native.
		checked *binary.Result
		// deadline is when the caller stops waiting for the answer.
		deadline time.Time
	}
	// cancelTrace: the context given to Start for the trace at path is
	// done; stop the trace (reason killed) if it still runs.
	cancelTrace struct{ path string }
)

// traceEntry is what the registry knows of one trace: its actor and the
// last snapshot it pushed.
type traceEntry struct {
	pid   *actor.PID
	info  messages.RunningInfo
	alive bool // the tracer may still run: counts against max-traces
	// unbind ends the watch on the context the trace was started with
	// (nil when it can never be done).
	unbind func() bool
}

// registryState is the registry's state. It lives outside the actor
// instance (the producer closes over it), so a restarted registry keeps
// every trace and its thread counter; and since the trace actors are not
// its children, a restart stops none of them (see doc.go).
type registryState struct {
	begun        bool
	lastThread   int64
	recovered    []*traceRun
	traces       map[string]*traceEntry // by path
	paths        map[string]string      // path by actor PID id
	shuttingDown bool
	waiters      []*actor.PID // Shutdown callers waiting for shutdownDone
}

func newRegistryState(lastThread int64, recovered []*traceRun) *registryState {
	s := &registryState{lastThread: lastThread, recovered: recovered,
		traces: make(map[string]*traceEntry), paths: make(map[string]string)}
	for _, r := range recovered {
		s.lastThread = max(s.lastThread, r.meta.Thread)
	}
	return s
}

// registry is the runtime's registry actor.
type registry struct {
	rt *Runtime
	s  *registryState
}

// Receive answers the runtime's requests. Every case is quick: the only
// I/O is writing a small script file on start (bounded: one O_EXCL create
// and a write of a few KiB, no fsync) and the stat of the tracer
// executable; the binary's preflight is done by Runtime.Start.
func (g *registry) Receive(ctx actor.Context) {
	s := g.s
	g.rt.opts.hooks.receive(ctx.Message())
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if s.begun {
			g.rt.log.Warn("registry restarted; every trace carries on", "traces", len(s.traces))
		}
	case *begin:
		if !s.begun {
			s.begun = true
			for _, r := range s.recovered {
				if err := g.spawn(ctx, r); err != nil {
					g.rt.log.Error("resuming recovered trace", "trace_path", r.path(), "err", err)
				}
			}
			s.recovered = nil
		}
	case *startTrace:
		reply := &messages.StartTraceReply{}
		r, err := g.prepare(msg)
		if err == nil {
			err = g.spawn(ctx, r)
		}
		if err != nil {
			reply.Err = err
		} else {
			reply.Thread, reply.FilePath = r.meta.Thread, r.path()
			g.bind(ctx, msg.ctx, r.path())
		}
		ctx.Respond(reply)
	case *cancelTrace:
		// The context the trace was started with is done.
		if e, ok := s.traces[msg.path]; ok {
			ctx.Send(e.pid, &killTrace{reason: messages.ReasonKilled})
		}
	case *messages.GetRunning:
		e, ok := s.traces[msg.Path]
		reply := &messages.GetRunningReply{Found: ok}
		if ok {
			reply.Info = e.info
		}
		ctx.Respond(reply)
	case *messages.ListRunning:
		list := make([]messages.RunningInfo, 0, len(s.traces))
		for _, e := range s.traces {
			list = append(list, e.info)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Thread < list[j].Thread })
		ctx.Respond(&messages.ListRunningReply{Traces: list})
	case *messages.KillTrace:
		e, ok := s.traces[msg.Path]
		if ok {
			ctx.Send(e.pid, &killTrace{reason: messages.ReasonKilled})
		}
		ctx.Respond(&messages.KillTraceReply{Found: ok})
	case *traceStatus:
		if e, ok := s.traces[msg.info.FilePath]; ok {
			e.info, e.alive = msg.info, msg.alive
		}
	case *traceDelivered:
		g.drop(msg.path)
		g.rt.publish(msg.finished)
		g.checkShutdown(ctx)
	case *actor.Terminated:
		// A trace actor sends traceDelivered and then stops, but the
		// notice of its stop is a system message, which the mailbox hands
		// over before the user messages already queued: the traceDelivered
		// may still be waiting. traceGone, queued behind it, decides.
		if path, ok := s.paths[msg.Who.Id]; ok {
			delete(s.paths, msg.Who.Id)
			ctx.Send(ctx.Self(), &traceGone{path: path})
		}
	case *traceGone:
		if _, open := s.traces[msg.path]; open {
			if !s.shuttingDown {
				g.rt.log.Error("trace actor stopped before its trace was delivered; its spool is kept for the next start",
					"trace_path", msg.path)
			}
			g.drop(msg.path)
		}
		g.checkShutdown(ctx)
	case *shutdownAll:
		s.shuttingDown = true
		for _, e := range s.traces {
			ctx.Send(e.pid, &killTrace{reason: messages.ReasonShutdown})
		}
		if ctx.Sender() != nil {
			s.waiters = append(s.waiters, ctx.Sender())
		}
		g.checkShutdown(ctx)
	case *listActors:
		pids := make([]*actor.PID, 0, len(s.paths))
		for id := range s.paths {
			pids = append(pids, g.rt.system.NewLocalPID(id))
		}
		ctx.Respond(&actorList{pids: pids})
	}
}

// bind stops the trace at path (reason killed) when c, the context it was
// started with, is done first: the registry hears of it by a message.
func (g *registry) bind(ctx actor.Context, c context.Context, path string) {
	e, ok := g.s.traces[path]
	if !ok || c == nil || c.Done() == nil {
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	e.unbind = context.AfterFunc(c, func() { root.Send(self, &cancelTrace{path: path}) })
}

// drop forgets the trace at path: delivered, or its actor gone.
func (g *registry) drop(path string) {
	if e, ok := g.s.traces[path]; ok && e.unbind != nil {
		e.unbind()
	}
	delete(g.s.traces, path)
}

// checkShutdown answers the Shutdown callers once no trace is left.
func (g *registry) checkShutdown(ctx actor.Context) {
	s := g.s
	if !s.shuttingDown || len(s.traces) > 0 {
		return
	}
	for _, w := range s.waiters {
		ctx.Send(w, &shutdownDone{})
	}
	s.waiters = nil
}

// spawn starts the trace actor of r under the runtime's trace guardian (not
// as the registry's child) and watches it.
func (g *registry) spawn(ctx actor.Context, r *traceRun) error {
	rt := g.rt
	props := actor.PropsFromProducer(func() actor.Actor { return &traceActor{rt: rt, r: r} },
		actor.WithGuardian(rt.traceStrategy))
	name := "trace-" + strings.TrimSuffix(filepath.Base(r.path()), ".trace")
	// Read r before the actor runs: from then on it is the actor's alone.
	path, info, alive := r.path(), r.info(), r.alive()
	pid, err := ctx.ActorSystem().Root.SpawnNamed(props, name)
	if err != nil {
		if r.script != "" {
			os.Remove(r.script)
		}
		if r.sp != nil {
			r.sp.Close()
		}
		if r.plan != nil {
			r.plan.Close()
		}
		return fmt.Errorf("spawning trace actor: %w", err)
	}
	ctx.Watch(pid)
	g.s.traces[path] = &traceEntry{pid: pid, info: info, alive: alive}
	g.s.paths[pid.Id] = path
	return nil
}

// prepare checks a start request and makes its run: limits, validation
// (again: the template was validated when stored, but the rules may have
// changed since), the traced binary and tracer executable, and the script
// file. A native start comes with its plan (Runtime.Start), which prepare
// closes when it refuses the start.
func (g *registry) prepare(st *startTrace) (_ *traceRun, err error) {
	if st.plan != nil {
		defer func() {
			if err != nil {
				st.plan.Close()
			}
		}()
	}
	s, o, msg := g.s, &g.rt.opts, &st.req
	if s.shuttingDown {
		return nil, ErrShuttingDown
	}
	if !st.deadline.IsZero() && !time.Now().Before(st.deadline) {
		// Nobody waits for this answer any more: a trace started now
		// would run unknown to its caller.
		return nil, fmt.Errorf("%w: the start waited past its deadline for the runtime", ErrTimeout)
	}
	alive := 0
	for _, e := range s.traces {
		if e.alive {
			alive++
		}
	}
	if alive >= o.MaxTraces {
		return nil, fmt.Errorf("%w: %d of %d (lambda.max-traces)", ErrTooManyTraces, alive, o.MaxTraces)
	}
	info := msg.Template.Info
	mode, err := checkRequest(o, msg)
	if err != nil {
		return nil, err
	}
	engine := st.engine
	isNative := engine == messages.EngineNative
	if isNative && st.plan == nil {
		return nil, fmt.Errorf("%w: engine: native start without a plan", ErrInvalid)
	}
	var bin binary.Result
	if isNative {
		// Runtime.Start checked the binary on the descriptor the probes
		// go into.
		bin = binary.Result{Identity: st.plan.Identity(), Go: st.plan.Go()}
	} else {
		tracerPath, key := o.BPFPath, "lambda.bpf-path"
		if info.TraceType == messages.STAP {
			tracerPath, key = o.StapPath, "lambda.stap-path"
		}
		if err := checkExecutable(tracerPath); err != nil {
			return nil, fmt.Errorf("%w: %s = %q: %w", ErrTracerMissing, key, tracerPath, err)
		}
		// [binary preflight] Done by Runtime.Start (checkBinary), out of
		// this mailbox; its identity is watched while the trace runs
		// (onTick).
		if st.checked == nil {
			return nil, fmt.Errorf("%w: start without its preflight", ErrInvalid)
		}
		bin = *st.checked
	}
	// The native engine runs no script; the file is still written: its path
	// names the trace (unique, created O_EXCL), and it shows what the
	// engine probes.
	script, err := tracer.Script(tracer.ScriptSpec{
		Type: info.TraceType, Process: info.Process, Functions: info.Functions,
		Lasting: msg.Lasting, Mode: mode, EntryOnly: bin.Go && !isNative,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: generating script: %w", ErrInvalid, err)
	}
	id := newUUID()
	path := filepath.Join(o.TraceDir, id+".trace")
	if err := writeScript(path, script); err != nil {
		return nil, fmt.Errorf("writing trace script: %w", err)
	}
	env := make([]string, len(info.Environment), len(info.Environment)+1)
	rbSet := false
	for i, name := range info.Environment {
		env[i] = name + "=" + info.Value[i]
		rbSet = rbSet || name == "BPFTRACE_PERF_RB_PAGES"
	}
	if info.TraceType == messages.BPF && o.BPFPerfRBPages > 0 && !rbSet {
		env = append(env, "BPFTRACE_PERF_RB_PAGES="+strconv.Itoa(o.BPFPerfRBPages))
	}
	s.lastThread++
	meta := runMeta{
		Path: path, Thread: s.lastThread, TraceNo: msg.Template.ID, Info: info, Mode: mode, Engine: engine,
		StartedAt: time.Now().UTC(), Lasting: int64(msg.Lasting / time.Second),
	}
	if isNative {
		r := g.rt.newTraceRun(meta, path, tracer.Command{})
		r.binary = bin.Identity
		r.plan = st.plan
		return r, nil
	}
	tracerPath := o.BPFPath
	if info.TraceType == messages.STAP {
		tracerPath = o.StapPath
	}
	cmd := tracer.Command{
		Path: tracerPath, Script: path, Options: info.Options, Env: env,
		RootPassword: o.RootPassword, SudoPath: o.SudoPath, StderrLimit: o.StderrLimit,
		CgroupParent: o.CgroupParent, Name: id,
		MemoryMax: o.TracerMemoryMax, PidsMax: o.TracerPidsMax, LimitsRequired: o.TracerLimitsRequired,
	}
	r := g.rt.newTraceRun(meta, path, cmd)
	r.binary = bin.Identity
	return r, nil
}

// checkRequest checks what a start asks beyond its template: the template
// against the rules, the lasting and the mode, which it returns (events
// when none is given).
func checkRequest(o *Options, msg *messages.StartTrace) (messages.Mode, error) {
	if err := validate.Template(msg.Template.Info, o.Rules); err != nil {
		return "", fmt.Errorf("%w: template %d: %w", ErrInvalid, msg.Template.ID, err)
	}
	if msg.Lasting < time.Second || msg.Lasting > o.MaxLasting || msg.Lasting%time.Second != 0 {
		return "", fmt.Errorf("%w: lasting must be whole seconds from 1 to %d", ErrInvalid, int64(o.MaxLasting/time.Second))
	}
	mode := msg.Mode
	if mode == "" {
		mode = messages.ModeEvents
	}
	switch mode {
	case messages.ModeEvents, messages.ModeCalls, messages.ModeSummary:
	default:
		return "", fmt.Errorf("%w: mode: %q is not one of events, calls, summary", ErrInvalid, mode)
	}
	return mode, nil
}

// resolveEngine is the engine msg asks for (def, the runtime's default,
// when none): "" for a STAP template, which stap runs; EngineBPFtrace or
// EngineNative for BPF. The native engine needs a BPF template and amd64.
func resolveEngine(def messages.Engine, msg *messages.StartTrace) (messages.Engine, error) {
	e := msg.Engine
	switch e {
	case "":
		if msg.Template.Info.TraceType == messages.STAP {
			return "", nil
		}
		e = def
	case messages.EngineBPFtrace, messages.EngineNative:
	default:
		return "", fmt.Errorf("%w: engine: %s is not one of bpftrace, native", ErrInvalid, strconv.QuoteToASCII(string(e)))
	}
	switch {
	case msg.Template.Info.TraceType == messages.STAP:
		return "", fmt.Errorf("%w: engine: %q runs BPF templates only; template %d is STAP (SystemTap runs it)",
			ErrInvalid, e, msg.Template.ID)
	case e == messages.EngineNative && runtime.GOARCH != "amd64":
		return "", fmt.Errorf("%w: engine: the native engine runs on amd64 only, this host is %s; use engine bpftrace",
			ErrInvalid, runtime.GOARCH)
	}
	return e, nil
}

// writeScript creates the script file; O_EXCL refuses to follow a link an
// attacker may have planted in a shared directory.
func writeScript(path string, script []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(script); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
