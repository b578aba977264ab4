package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// registryState is the registry's state. It lives outside the actor
// instance so that a restarted registry keeps its runs and thread counter.
type registryState struct {
	lastThread   int64
	runs         map[string]*run
	children     map[string]*actor.PID
	shuttingDown bool
}

func newRegistryState(rt *Runtime, recovered []*run) *registryState {
	s := &registryState{runs: make(map[string]*run), children: make(map[string]*actor.PID)}
	for _, r := range recovered {
		s.runs[r.path()] = r
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
// I/O is writing a small script file on start.
func (g *registry) Receive(ctx actor.Context) {
	s := g.s
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		// Spawn actors for recovered runs (first start only: children
		// survive a registry restart).
		for path, r := range s.runs {
			if _, ok := s.children[path]; !ok {
				g.spawn(ctx, r)
			}
		}
	case *messages.StartTrace:
		reply := &messages.StartTraceReply{}
		r, err := g.prepare(msg)
		if err == nil {
			err = g.spawn(ctx, r)
		}
		if err != nil {
			reply.Err = err
		} else {
			reply.Thread, reply.FilePath = r.meta.Thread, r.path()
		}
		ctx.Respond(reply)
	case *messages.GetRunning:
		r, ok := s.runs[msg.Path]
		reply := &messages.GetRunningReply{Found: ok}
		if ok {
			reply.Info = r.snapshot()
		}
		ctx.Respond(reply)
	case *messages.ListRunning:
		list := make([]messages.RunningInfo, 0, len(s.runs))
		for _, r := range s.runs {
			list = append(list, r.snapshot())
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Thread < list[j].Thread })
		ctx.Respond(&messages.ListRunningReply{Traces: list})
	case *messages.KillTrace:
		pid, ok := s.children[msg.Path]
		if ok {
			ctx.Send(pid, &killTrace{reason: messages.ReasonKilled})
		}
		ctx.Respond(&messages.KillTraceReply{Found: ok})
	case *traceDelivered:
		delete(s.runs, msg.path)
		if pid, ok := s.children[msg.path]; ok {
			delete(s.children, msg.path)
			ctx.Stop(pid)
		}
		g.rt.publish(msg.finished)
	case *shutdownAll:
		s.shuttingDown = true
		for _, pid := range s.children {
			ctx.Send(pid, &killTrace{reason: messages.ReasonShutdown})
		}
		ctx.Respond(&shutdownAck{traces: len(s.children)})
	case *stall:
		time.Sleep(msg.d)
	case *crash:
		if pid, ok := s.children[msg.path]; ok {
			ctx.Send(pid, msg)
		}
	}
}

// spawn starts the trace actor of r as a child, supervised by the
// registry's one-for-one strategy.
func (g *registry) spawn(ctx actor.Context, r *run) error {
	props := actor.PropsFromProducer(func() actor.Actor { return newTraceActor(r) })
	name := "trace-" + strings.TrimSuffix(filepath.Base(r.path()), ".trace")
	pid, err := ctx.SpawnNamed(props, name)
	if err != nil {
		delete(g.s.runs, r.path())
		r.removeScript()
		return fmt.Errorf("spawning trace actor: %w", err)
	}
	g.s.runs[r.path()] = r
	g.s.children[r.path()] = pid
	return nil
}

// prepare checks a start request and makes its run: limits, validation
// (again: the template was validated when stored, but the rules may have
// changed since), the traced binary and tracer executable, and the script
// file.
func (g *registry) prepare(msg *messages.StartTrace) (*run, error) {
	s, o := g.s, &g.rt.opts
	if s.shuttingDown {
		return nil, ErrShuttingDown
	}
	alive := 0
	for _, r := range s.runs {
		if r.alive() {
			alive++
		}
	}
	if alive >= o.MaxTraces {
		return nil, fmt.Errorf("%w: %d of %d (lambda.max-traces)", ErrTooManyTraces, alive, o.MaxTraces)
	}
	info := msg.Template.Info
	if err := validate.Template(info, o.Rules); err != nil {
		return nil, fmt.Errorf("%w: template %d: %w", ErrInvalid, msg.Template.ID, err)
	}
	if msg.Lasting < time.Second || msg.Lasting > o.MaxLasting || msg.Lasting%time.Second != 0 {
		return nil, fmt.Errorf("%w: lasting must be whole seconds from 1 to %d", ErrInvalid, int64(o.MaxLasting/time.Second))
	}
	mode := msg.Mode
	if mode == "" {
		mode = messages.ModeEvents
	}
	switch mode {
	case messages.ModeEvents, messages.ModeCalls, messages.ModeSummary:
	default:
		return nil, fmt.Errorf("%w: mode: %q is not one of events, calls, summary", ErrInvalid, mode)
	}
	tracerPath, key := o.BPFPath, "lambda.bpf-path"
	if info.TraceType == messages.STAP {
		tracerPath, key = o.StapPath, "lambda.stap-path"
	}
	if err := checkExecutable(tracerPath); err != nil {
		return nil, fmt.Errorf("%w: %s = %q: %w", ErrTracerMissing, key, tracerPath, err)
	}
	if fi, err := os.Stat(info.Process); err != nil {
		return nil, fmt.Errorf("%w: process %q: %w", ErrBinaryMissing, info.Process, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: process %q is not a regular file", ErrBinaryMissing, info.Process)
	}
	script, err := tracer.Script(tracer.ScriptSpec{
		Type: info.TraceType, Process: info.Process, Functions: info.Functions,
		Lasting: msg.Lasting, Mode: mode,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: generating script: %w", ErrInvalid, err)
	}
	id := newUUID()
	path := filepath.Join(o.TraceDir, id+".trace")
	if err := writeScript(path, script); err != nil {
		return nil, fmt.Errorf("writing trace script: %w", err)
	}
	env := make([]string, len(info.Environment))
	for i, name := range info.Environment {
		env[i] = name + "=" + info.Value[i]
	}
	s.lastThread++
	meta := runMeta{
		Path: path, Thread: s.lastThread, TraceNo: msg.Template.ID, Info: info, Mode: mode,
		StartedAt: time.Now().UTC(), Lasting: int64(msg.Lasting / time.Second),
	}
	cmd := tracer.Command{
		Path: tracerPath, Script: path, Options: info.Options, Env: env,
		RootPassword: o.RootPassword, SudoPath: o.SudoPath, StderrLimit: o.StderrLimit,
		CgroupParent: o.CgroupParent, Name: id,
		MemoryMax: o.TracerMemoryMax, PidsMax: o.TracerPidsMax, LimitsRequired: o.TracerLimitsRequired,
	}
	return newRun(g.rt, meta, path, cmd), nil
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
