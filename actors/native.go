package actors

import (
	"io"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
)

// tracerProc is a running trace's engine as the trace actor and its workers
// see it: a bpftrace or stap process (*tracer.Process) or a trace of the
// native engine (*nativeProc). The pump reads Stdout, the waiter Wait, and
// stop, the watchdog and release signal it, the same way whichever engine
// runs.
type tracerProc interface {
	// Stdout is the trace's output; it has SetReadDeadline.
	Stdout() io.Reader
	// CloseStdout closes Stdout early (a reader that stops reading).
	CloseStdout() error
	// PID is the tracer's process id; 0 for the native engine, which
	// runs inside the endpoint.
	PID() int
	// LimitsErr tells why the tracer runs without its cgroup limits.
	LimitsErr() error
	// Stop ends the trace gracefully (SIGINT, SIGKILL after grace for a
	// process): a summary trace prints its summary.
	Stop(grace time.Duration)
	// Kill ends it at once.
	Kill()
	// Wait blocks until the trace has ended and released everything.
	Wait() tracer.Exit
	// Done is closed when Wait would not block.
	Done() <-chan struct{}
}

var (
	_ tracerProc = (*tracer.Process)(nil)
	_ tracerProc = (*nativeProc)(nil)
)

// lostEventsOf returns the events an ended trace counted lost by itself:
// the native engine's kernel counter. bpftrace reports its losses on
// stdout instead, where the pump counts them; for it this is 0.
func lostEventsOf(p tracerProc) int64 {
	if n, ok := p.(*nativeProc); ok {
		res, _ := n.t.Wait()
		return int64(res.LostEvents)
	}
	return 0
}

// nativeProc is a trace of the native engine (package tracer/native) as a
// tracerProc. The engine runs in the endpoint's process: its probes, maps
// and ring buffer are file descriptors of the endpoint, released when the
// trace ends (Stop, the run's context, its lasting) and by the kernel when
// the endpoint exits, so nothing can be orphaned.
//
// A panic in the engine's goroutine (formatting a record, reading the ring
// buffer) does not reach the endpoint: the engine recovers it, detaches
// every probe, closes its output (the pump sees EOF and spools what was
// read) and Wait reports it as a failed exit (code 1, the panic in stderr).
// The trace then ends failed: re-attaching the probes would lose or repeat
// events, so the engine is not restarted; the platform gets everything
// read and a finished message saying why.
type nativeProc struct {
	t *native.Trace
}

func (p *nativeProc) Stdout() io.Reader     { return p.t.Output() }
func (p *nativeProc) CloseStdout() error    { return p.t.CloseOutput() }
func (p *nativeProc) PID() int              { return 0 }
func (p *nativeProc) LimitsErr() error      { return nil }
func (p *nativeProc) Done() <-chan struct{} { return p.t.Done() }

// Stop ends the trace within a poll interval: probes detached, the ring
// buffer drained, the summary printed (mode summary). No grace is needed:
// nothing can ignore it.
func (p *nativeProc) Stop(time.Duration) { p.t.Stop() }

// Kill is Stop: detaching is immediate, and what the ring buffer holds is
// read either way.
func (p *nativeProc) Kill() { p.t.Stop() }

// Wait returns the trace's end as a tracer's exit: code 0, or 1 with the
// engine's error in Stderr when reading or detaching failed or the engine
// panicked.
func (p *nativeProc) Wait() tracer.Exit {
	_, err := p.t.Wait()
	if err != nil {
		return tracer.Exit{Code: 1, Stderr: "native engine: " + err.Error() + "\n", Err: err}
	}
	return tracer.Exit{}
}
