package tracer

import (
	"io"
	"sync"
	"time"
)

// Exit is how a tracer ended.
type Exit struct {
	// Code is the exit code; a tracer killed by signal N gets 128+N, and -1
	// means the status could not be read (see Err).
	Code int
	// Signaled reports that a signal ended the tracer.
	Signaled bool
	// Stderr is the tail of the tracer's stderr, at most
	// Command.StderrLimit bytes; when bytes were dropped it starts with
	// "…(N bytes dropped)\n".
	Stderr string
	// Err is a wait error other than a non-zero exit, if any.
	Err error
	// OOMKilled reports that the kernel killed a process of the tracer's
	// cgroup for going over Command.MemoryMax (oom_kill in memory.events,
	// or in memory.oom_control of its cgroup v1 on hybrid hosts).
	OOMKilled bool
	// CleanupErr is set when the tracer's cgroup could not be removed
	// after it exited; Cleanup removes it later.
	CleanupErr error
}

// Process is one running tracer and everything it started. Its methods are
// safe for concurrent use.
//
// The caller must read Stdout until EOF (or call CloseStdout): a tracer that
// fills the pipe blocks. When the tracer exits, whatever it left running in
// its cgroup or process group is killed, so EOF follows the exit; only a
// process that escaped both (possible when the tracer runs uncontained,
// see Contained) can hold stdout open longer.
type Process struct {
	pid        int
	sudo       bool
	cg         *cgroup // nil when uncontained
	containErr error
	limitsErr  error
	stdout     *stdoutPipe
	stderr     *tailBuffer
	stderrDone chan struct{} // closed when the stderr reader returns
	done       chan struct{} // closed after exit is set

	mu       sync.Mutex
	exited   bool          // leader exited: its pid/pgid must not be signalled
	stopping bool          // Stop was called
	killing  bool          // a sudo-mode Kill is escalating
	timers   []*time.Timer // escalations, stopped at exit
	exit     Exit          // written once before done is closed
}

// PID returns the process id of the tracer (of sudo when run through sudo).
// It is also the tracer's process group id.
func (p *Process) PID() int { return p.pid }

// Stdout returns the read end of the tracer's stdout pipe. Reading it to
// EOF (or to any error but a deadline) releases it. It also has a
// SetReadDeadline(time.Time) error method, so a reader can wake up while the
// tracer is quiet. EOF comes when every process holding the
// write end has exited: the tracer and whatever it started.
func (p *Process) Stdout() io.Reader { return p.stdout }

// StdoutCapacity returns the capacity of the stdout pipe in bytes (see
// StdoutPipeSize), or 0 when it is not known: how much the tracer can write
// while nobody reads before it blocks.
func (p *Process) StdoutCapacity() int { return p.stdout.capacity }

// CloseStdout closes the read end of the stdout pipe early, for a caller that
// stops reading; a tracer still writing then fails with EPIPE. A pending Read
// returns an error wrapping os.ErrClosed.
func (p *Process) CloseStdout() error { return p.stdout.close() }

// Done returns a channel closed when the tracer has exited, its leftovers are
// killed, its stderr is drained and its cgroup is removed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until Done and returns how the tracer ended.
func (p *Process) Wait() Exit {
	<-p.done
	return p.exit
}

// Contained reports whether the tracer runs in a cgroup of its own, which
// lets Kill reach every process it started even if one left the process
// group. Without it only the process group is signalled.
func (p *Process) Contained() bool { return p.cg != nil }

// CgroupDir returns the tracer's cgroup directory, or "" when uncontained.
func (p *Process) CgroupDir() string {
	if p.cg == nil {
		return ""
	}
	return p.cg.dir
}

// LimitsErr tells why the tracer runs without the memory or pids limit it
// asked for (best effort), or nil.
func (p *Process) LimitsErr() error { return p.limitsErr }

// ContainErr tells why the tracer runs without a cgroup of its own: nil when
// it has one or when cgroups were disabled with CgroupParent "-".
func (p *Process) ContainErr() error { return p.containErr }
