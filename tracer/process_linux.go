//go:build linux

package tracer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// stderrDrainTimeout bounds the wait for stderr EOF after the tracer
	// was reaped (a process that escaped every kill may hold it open).
	stderrDrainTimeout = 2 * time.Second
	// sudoKillDelay is how long Kill waits, for a tracer run through sudo
	// without a cgroup, between SIGTERM (which sudo relays to the root
	// tracer) and SIGKILL (which sudo cannot relay).
	sudoKillDelay = 2 * time.Second
)

// Start launches the tracer described by c and returns at once; ctx bounds
// only the launch, not the tracer's life.
//
// The tracer runs as "<Path> <Script> <Options...>" with BaseEnv plus c.Env
// and nothing of the endpoint's environment, stdin on /dev/null, in a new
// process group, and in a new cgroup "<CgroupParent>/<Name>" entered at fork
// (CLONE_INTO_CGROUP) when cgroup v2 is usable; otherwise it is uncontained
// (see Process.Contained and Process.ContainErr). Its memory and pids limits
// are set in that cgroup, or, for a controller that cgroup v2 lacks (hybrid
// hosts), in cgroup v1 cgroups of its own that the forking thread enters
// for the fork (see applyLimits). It gets SIGKILL if the
// endpoint dies (PR_SET_PDEATHSIG): the forking OS thread stays locked to a
// goroutine of the Process until the tracer is reaped. When the endpoint is
// not root and c.RootPassword is set, the tracer runs as
// "<SudoPath> -S -p "" -- /usr/bin/env -i <env...> <Path> <Script>
// <Options...>" with the password on stdin.
//
// Start wraps ErrTracerNotFound when c.Path is missing or not executable,
// and ctx.Err() when ctx is done before the fork.
func Start(ctx context.Context, c Command) (*Process, error) {
	return start(ctx, c, os.Geteuid())
}

// start is Start for an endpoint running with effective uid euid.
func start(ctx context.Context, c Command, euid int) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting tracer %s: %w", c.Path, err)
	}
	if err := checkExecutable(c.Path); err != nil {
		return nil, err
	}
	if err := checkName(c.Name); err != nil {
		return nil, err
	}
	spec, err := buildLaunch(c, euid)
	if err != nil {
		return nil, err
	}
	pp, err := openPipes(spec.stdin)
	if err != nil {
		return nil, err
	}
	defer pp.closeChildEnds()

	p := &Process{
		sudo:       spec.sudo,
		stdout:     pp.stdout,
		stderr:     newTailBuffer(c.StderrLimit),
		stderrDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	p.cg, p.containErr = containment(c)
	if c.limitsWanted() {
		if p.cg == nil {
			p.limitsErr = fmt.Errorf("%w: the tracer has no cgroup of its own", ErrLimitsUnavailable)
			if p.containErr != nil {
				p.limitsErr = fmt.Errorf("%w: %w", ErrLimitsUnavailable, p.containErr)
			}
		} else if err := applyLimits(p.cg, c); err != nil {
			p.limitsErr = fmt.Errorf("%w: %w", ErrLimitsUnavailable, err)
		}
		if p.limitsErr != nil && c.LimitsRequired {
			err := fmt.Errorf("starting tracer %s: %w", c.Path, p.limitsErr)
			return nil, errors.Join(err, p.abandon(pp))
		}
	}
	if err := ctx.Err(); err != nil {
		err = fmt.Errorf("starting tracer %s: %w", c.Path, err)
		return nil, errors.Join(err, p.abandon(pp))
	}
	err = p.launch(spec, pp)
	if err != nil && p.cg != nil && !(c.limitsWanted() && c.LimitsRequired) {
		// A cgroup that cannot take the child (kernel without
		// CLONE_INTO_CGROUP, odd hierarchy) must not stop the trace.
		p.containErr = fmt.Errorf("starting in cgroup %s: %w", p.cg.dir, err)
		if c.limitsWanted() {
			p.limitsErr = fmt.Errorf("%w: %w", ErrLimitsUnavailable, p.containErr)
		}
		_ = p.cg.remove()
		p.cg = nil
		err = p.launch(spec, pp)
	}
	if err != nil {
		err = fmt.Errorf("starting tracer %s: %w", c.Path, err)
		return nil, errors.Join(err, p.abandon(pp))
	}
	return p, nil
}

// containment creates the tracer's cgroup: nil and nil when disabled, nil
// and the reason when not possible.
func containment(c Command) (*cgroup, error) {
	parent, err := resolveCgroupParent(c.CgroupParent)
	if err != nil || parent == "" {
		return nil, err
	}
	name := c.Name
	if name == "" {
		name = "trace-" + rand.Text()
	}
	return createCgroup(parent, name)
}

// abandon releases what a failed Start created.
func (p *Process) abandon(pp *pipes) error {
	pp.closeParentEnds()
	if p.cg != nil {
		return p.cg.remove()
	}
	return nil
}

// launch forks and execs on a new goroutine locked to its OS thread, which
// then stays to wait for the tracer; it returns the fork/exec error.
func (p *Process) launch(spec launchSpec, pp *pipes) error {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.cg != nil {
		attr.UseCgroupFD = true
		attr.CgroupFD = p.cg.fd
	}
	cmd := &exec.Cmd{
		Path:        spec.path,
		Args:        spec.args,
		Env:         spec.env,
		Stdout:      pp.stdoutW,
		Stderr:      pp.stderrW,
		SysProcAttr: attr,
	}
	if pp.stdinR != nil {
		cmd.Stdin = pp.stdinR
	}
	started := make(chan error, 1)
	go p.run(cmd, pp.stderrR, started)
	return <-started
}

// run owns the tracer from fork to reaping, on one locked OS thread (the
// parent-death signal fires when the thread that forked exits, so that
// thread must live until the tracer is reaped: golang/go#27505). It reports
// the fork/exec result on started and, after a successful start, closes
// p.done once everything is over.
func (p *Process) run(cmd *exec.Cmd, stderrR *os.File, started chan<- error) {
	runtime.LockOSThread()
	// cgroup v1 cannot clone into a cgroup: this thread enters the v1 limit
	// cgroups, forks (the child is born in them, and in the v2 cgroup
	// through CLONE_INTO_CGROUP) and leaves at once. Until it leaves, for
	// the microseconds between the child's exec and the return of Start,
	// the thread counts in the tracer's pids.max. See enterV1 for the one
	// cgroup entered after the start.
	leave := func() error { return nil }
	var late []*cgroup
	if p.cg != nil && len(p.cg.v1) > 0 {
		var err error
		if leave, late, err = p.cg.enterV1(); err != nil {
			p.cg.closeFD()
			started <- err
			return
		}
	}
	err := cmd.Start()
	lerr := leave()
	if p.cg != nil {
		p.cg.closeFD()
	}
	if err == nil {
		for _, v1 := range late {
			lerr = errors.Join(lerr, writeCgroupFile(v1.dir, "cgroup.procs", strconv.Itoa(cmd.Process.Pid)))
		}
	}
	if err == nil && lerr != nil {
		// The endpoint's thread stuck in the tracer's cgroups would count
		// against its limits, or the tracer escaped one: give it up.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		err = lerr
	}
	if err != nil {
		started <- err
		return // still locked: the runtime ends the thread
	}
	p.pid = cmd.Process.Pid
	go p.readStderr(stderrR)
	started <- nil

	waitExited(p.pid)
	p.mu.Lock()
	p.exited = true
	// The leader is a zombie until reaped, so its pid and process group id
	// cannot be reused yet: kill whatever it left behind.
	p.killTreeLocked()
	for _, t := range p.timers {
		t.Stop()
	}
	p.mu.Unlock()
	werr := cmd.Wait()
	// The thread stays locked: when this goroutine returns, the runtime
	// ends the thread instead of keeping it idle, so a host that ran many
	// traces does not keep one OS thread per trace it ever ran.

	exit := exitStatus(cmd.ProcessState, werr)
	p.drainStderr(stderrR)
	exit.Stderr = p.stderr.String()
	if p.cg != nil {
		exit.OOMKilled = p.cg.oomKilled(exit.Signaled && exit.Code == 128+int(syscall.SIGKILL))
		exit.CleanupErr = p.cg.remove()
	}
	p.exit = exit
	close(p.done)
}

// readStderr copies stderr into the tail buffer until EOF or until
// drainStderr closes the pipe.
func (p *Process) readStderr(f *os.File) {
	defer close(p.stderrDone)
	_, _ = io.Copy(p.stderr, f)
	_ = f.Close()
}

// drainStderr waits for stderr EOF, or closes the pipe after
// stderrDrainTimeout when something that escaped the kills still holds it.
func (p *Process) drainStderr(f *os.File) {
	t := time.NewTimer(stderrDrainTimeout)
	defer t.Stop()
	select {
	case <-p.stderrDone:
	case <-t.C:
		_ = f.Close()
		<-p.stderrDone
	}
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// exitStatus converts a reaped process's state into an Exit.
func exitStatus(ps *os.ProcessState, err error) Exit {
	var ee *exec.ExitError
	if ps == nil || (err != nil && !errors.As(err, &ee)) {
		return Exit{Code: -1, Err: err}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signaled: true}
	}
	return Exit{Code: ps.ExitCode()}
}

// Stop asks the tracer to finish: one SIGINT to each process of its process
// group and cgroup (to sudo alone when run through sudo, which relays it),
// on which bpftrace runs its END probes, prints its maps and exits; then
// SIGKILL to all of them (as Kill) if the tracer still runs after grace.
// grace <= 0 kills at once. Stop does not block. Only the first call acts,
// and a call after the tracer exited does nothing.
//
// bpftrace 0.17 checks for SIGINT only inside its event wait, or at its next
// event: a SIGINT that arrives while it handles the last event before a
// quiet spell goes unnoticed until more events come, and the SIGKILL after
// grace ends it. A second SIGINT is no cure: during the END probe it cuts
// the final output short.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited || p.stopping {
		return
	}
	p.stopping = true
	p.signalTreeLocked(syscall.SIGINT)
	if grace <= 0 {
		p.killLocked()
		return
	}
	p.timers = append(p.timers, time.AfterFunc(grace, p.Kill))
}

// Kill kills the tracer and everything it started: "1" to cgroup.kill and
// SIGKILL to the process group. It does not block (Wait does) and does
// nothing once the tracer exited. A tracer run through sudo without a cgroup
// cannot be SIGKILLed by an unprivileged endpoint: it gets SIGTERM, which
// sudo relays, and sudo gets SIGKILL after sudoKillDelay.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		p.killLocked()
	}
}

func (p *Process) killLocked() {
	if !p.sudo || p.cg != nil {
		p.killTreeLocked()
		return
	}
	if p.killing {
		return
	}
	p.killing = true
	p.signalTreeLocked(syscall.SIGTERM)
	p.timers = append(p.timers, time.AfterFunc(sudoKillDelay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.exited {
			p.killTreeLocked()
		}
	}))
}

// killTreeLocked SIGKILLs the cgroup and the process group. p.mu is held
// and the leader is not reaped, so the group id is still ours.
func (p *Process) killTreeLocked() {
	if p.cg != nil {
		_ = p.cg.kill()
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// signalTreeLocked sends sig once to every process of the process group
// and of the cgroup, under the same conditions as killTreeLocked. Once
// matters: a second SIGINT makes bpftrace lose the output of its END probe
// and printed maps.
func (p *Process) signalTreeLocked(sig syscall.Signal) {
	if p.sudo {
		// sudo relays sig to the tracer; signalling the tracer as well
		// would deliver it twice.
		_ = syscall.Kill(p.pid, sig)
		return
	}
	_ = syscall.Kill(-p.pid, sig)
	if p.cg != nil {
		_ = p.cg.signal(sig, p.pid)
	}
}

// pipes are the tracer's standard streams; the child ends are closed once
// the child has them.
type pipes struct {
	stdinR           *os.File // nil: /dev/null
	stdout           *stdoutPipe
	stdoutW          *os.File
	stderrR, stderrW *os.File
}

// StdoutPipeSize is the capacity the tracer's stdout pipe is given
// (F_SETPIPE_SZ) instead of the kernel's 64 KiB: a tracer such as bpftrace
// writes one line per event, and a larger pipe lets the reader take many
// lines per read without the tracer blocking meanwhile (a blocked bpftrace
// loses events). 1 MiB is the kernel's default fs.pipe-max-size, which an
// unprivileged process may ask for too; the pages are allocated only as
// the pipe fills. When the kernel refuses (an exhausted per-user pipe
// quota, a lower pipe-max-size), the pipe keeps its size silently.
const StdoutPipeSize = 1 << 20

// growPipe asks for StdoutPipeSize on the pipe of f and returns the
// capacity the pipe has then (0 if unknown). It goes through SyscallConn,
// not Fd, which would change the descriptor's blocking mode.
func growPipe(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	capacity := 0
	_ = rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, StdoutPipeSize); err == nil {
			capacity = n
			return
		}
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil {
			capacity = n
		}
	})
	return capacity
}

// openPipes creates stdout and stderr pipes and, when stdin is not empty, a
// stdin pipe already holding it (small enough for the pipe buffer).
func openPipes(stdin string) (*pipes, error) {
	pp := &pipes{}
	var err error
	if pp.stdout, pp.stdoutW, err = openStdoutPipe(); err != nil {
		return nil, fmt.Errorf("creating stdout pipe: %w", err)
	}
	if pp.stderrR, pp.stderrW, err = os.Pipe(); err != nil {
		pp.closeAll()
		return nil, fmt.Errorf("creating stderr pipe: %w", err)
	}
	if stdin == "" {
		return pp, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		pp.closeAll()
		return nil, fmt.Errorf("creating stdin pipe: %w", err)
	}
	pp.stdinR = r
	_, err = w.WriteString(stdin)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		pp.closeAll()
		return nil, fmt.Errorf("writing stdin pipe: %w", err)
	}
	return pp, nil
}

func (pp *pipes) closeChildEnds() {
	for _, f := range []*os.File{pp.stdinR, pp.stdoutW, pp.stderrW} {
		if f != nil {
			_ = f.Close()
		}
	}
}

func (pp *pipes) closeParentEnds() {
	_ = pp.stdout.close()
	_ = pp.stderrR.Close()
}

func (pp *pipes) closeAll() {
	pp.closeChildEnds()
	if pp.stdout != nil {
		_ = pp.stdout.close()
	}
	if pp.stderrR != nil {
		_ = pp.stderrR.Close()
	}
}
