package actors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// nativeProbesPerFunction bounds a native trace's uprobes (entries and Go
// RET instructions) to this many per function lambda.max-probes allows, at
// most native.DefaultMaxProbes: each uprobe costs every call through it.
const nativeProbesPerFunction = 32

// maxPlanning is how many native starts are planned at once: planning
// disassembles machine code (bounded per start by native.MaxInstructions),
// and a burst of starts must not take every core of the host it watches.
const maxPlanning = 2

// StartRequest asks for one trace.
type StartRequest struct {
	Template messages.Template
	Lasting  time.Duration
	Mode     messages.Mode
	// Engine runs a BPF template: "" (Options.Engine), EngineBPFtrace or
	// EngineNative.
	Engine messages.Engine
}

// Start starts a trace of req.Template for req.Lasting. It returns once the
// trace is accepted; the tracer attaches in the background. ctx bounds the
// wait for the answer and is the trace's own: when it is done before the
// trace ends, the trace is stopped (reason killed) and what it wrote is
// still delivered. A caller whose trace must outlive it (the HTTP API)
// passes context.WithoutCancel. It may wrap ErrInvalid, ErrBinaryMissing,
// ErrTracerMissing, ErrTooManyTraces, ErrShuttingDown or ErrTimeout.
//
// A native start is planned here, in the caller's goroutine (at most
// maxPlanning at once): the binary opened once, checked, and its functions
// disassembled within the engine's bounds, so that a binary it cannot
// trace is refused with ErrInvalid before anything runs.
func (rt *Runtime) Start(ctx context.Context, req StartRequest) (messages.StartTraceReply, error) {
	if rt.closing.Load() {
		return messages.StartTraceReply{}, ErrShuttingDown
	}
	st := &startTrace{ctx: ctx, req: messages.StartTrace{Template: req.Template, Lasting: req.Lasting, Mode: req.Mode, Engine: req.Engine}}
	var err error
	if st.engine, err = resolveEngine(rt.opts.Engine, &st.req); err != nil {
		return messages.StartTraceReply{}, err
	}
	if st.engine == messages.EngineNative {
		if st.plan, err = rt.planNative(ctx, &st.req); err != nil {
			return messages.StartTraceReply{}, err
		}
	} else if st.checked, err = rt.checkBinary(&st.req); err != nil {
		return messages.StartTraceReply{}, err
	}
	// The registry refuses the start once the caller stopped waiting for
	// the answer (ErrTimeout): a start it answers too late must not run
	// unknown to anyone.
	st.deadline = time.Now().Add(rt.opts.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(st.deadline) {
		st.deadline = dl
	}
	if !time.Now().Before(st.deadline) {
		if st.plan != nil {
			st.plan.Close()
		}
		return messages.StartTraceReply{}, fmt.Errorf("%w: no time left to start", ErrTimeout)
	}
	// From here the registry owns the plan (it closes it on a refusal).
	res, err := rt.ask(ctx, st)
	if err != nil {
		return messages.StartTraceReply{}, err
	}
	reply := res.(*messages.StartTraceReply)
	if reply.Err != nil {
		return messages.StartTraceReply{}, reply.Err
	}
	return *reply, nil
}

// planNative plans the native trace msg asks for: the template checked,
// the binary opened once (never blocking on what its path names), the
// preflight run on that descriptor, and native.Prepare, each step bounded
// by ctx, the runtime's timeout and its shutdown.
func (rt *Runtime) planNative(ctx context.Context, msg *messages.StartTrace) (*native.Plan, error) {
	o := &rt.opts
	info := msg.Template.Info
	mode, err := checkRequest(o, msg)
	if err != nil {
		return nil, err
	}
	// Options and environment are bpftrace's, but -p PID, which the
	// native engine filters on in the kernel.
	pid, err := validate.NativeOptions(info.Options, info.Environment)
	if err != nil {
		return nil, fmt.Errorf("%w: template %d: %w", ErrInvalid, msg.Template.ID, err)
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	defer context.AfterFunc(rt.ctx, cancel)()
	select {
	case rt.planning <- struct{}{}:
		defer func() { <-rt.planning }()
	case <-pctx.Done():
		return nil, rt.planningEnded(ctx, "waiting to plan the native trace")
	}
	f, err := binary.Open(info.Process)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: process %q: %w", ErrBinaryMissing, info.Process, err)
	case errors.Is(err, binary.ErrNotRegular):
		return nil, fmt.Errorf("%w: process %q is not a regular file", ErrBinaryMissing, info.Process)
	case err != nil:
		return nil, fmt.Errorf("%w: template %d: process %q: %w", ErrInvalid, msg.Template.ID, info.Process, err)
	}
	_, syms, err := o.Binaries.CheckFile(info, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: template %d: %w", ErrInvalid, msg.Template.ID, err)
	}
	plan, err := native.Prepare(pctx, f, syms, native.Spec{
		Process: info.Process, Functions: info.Functions, Mode: mode, Lasting: msg.Lasting,
		PID: pid, RingBytes: o.NativeRingBytes, FlushInterval: o.FlushInterval,
		MaxProbes: min(o.Binaries.MaxProbes()*nativeProbesPerFunction, native.DefaultMaxProbes),
	})
	if err != nil {
		if pctx.Err() != nil {
			return nil, rt.planningEnded(ctx, "planning the native trace")
		}
		return nil, fmt.Errorf("%w: template %d: engine native: %w", ErrInvalid, msg.Template.ID, err)
	}
	return plan, nil
}

// checkBinary is the preflight of a bpftrace or SystemTap start, in the
// caller's goroutine (never in the registry's mailbox: reading a large
// binary takes seconds; binary.Checker bounds the reads at once): the
// request checked, then the binary as it is now (ELF, functions matched,
// probes bounded, no return probes into Go), whose identity the run
// watches.
func (rt *Runtime) checkBinary(msg *messages.StartTrace) (*binary.Result, error) {
	o := &rt.opts
	info := msg.Template.Info
	mode, err := checkRequest(o, msg)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(info.Process); err != nil {
		return nil, fmt.Errorf("%w: process %q: %w", ErrBinaryMissing, info.Process, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: process %q is not a regular file", ErrBinaryMissing, info.Process)
	}
	bin, err := o.Binaries.Check(info)
	if err == nil {
		err = binary.Mode(bin, mode)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: template %d: %w", ErrInvalid, msg.Template.ID, err)
	}
	return &bin, nil
}

// planningEnded is the error of a planning step cut off by the end of its
// context: the runtime shutting down, or the caller's context or the
// runtime's timeout.
func (rt *Runtime) planningEnded(ctx context.Context, step string) error {
	switch {
	case rt.ctx.Err() != nil:
		return ErrShuttingDown
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", step, ctx.Err())
	}
	return fmt.Errorf("%w: %s (%s)", ErrTimeout, step, rt.opts.Timeout)
}
