// Package tracer turns a validated trace template into a tracer script and
// runs the tracer (bpftrace or SystemTap) as a contained child process.
//
// # Scripts
//
// Script turns a ScriptSpec (tracer type, process, functions, lasting,
// mode) into a bpftrace or SystemTap program whose every output line is one
// JSON object: mode events (the default) prints a line at each entry and
// return, mode calls one line per completed call with its duration and
// return value, mode summary nothing while the trace runs and, when it ends,
// per function a call count and a log2 histogram of durations. It depends
// only on its input and the machine's architecture, and validates again what
// it writes (package validate) rather than trusting its caller.
//
// Go binaries get no return probe (ScriptSpec.EntryOnly, set by the caller
// from the preflight of package binary): bpftrace's uretprobe and
// SystemTap's .return both replace the return address on the stack, which
// Go's stack walking and copying do not survive ("fatal error: unknown
// caller pc"). Mode events then prints entry lines only; modes calls and
// summary are refused, since they need returns. A probe on each RET
// instruction would measure returns safely, but bpftrace 0.17 as built on
// Debian refuses offset and address probes unless --unsafe is given, which
// the endpoint never adds.
//
// # Processes
//
// Start runs "<tracer> <script> <options...>" as described by a Command and
// returns a Process. The tracer never inherits the endpoint's environment
// (which may hold LAMBDA_SECRET): it gets BaseEnv plus the template's
// variables. An endpoint that is not root runs it through "sudo -S" when a
// root password is configured, passing the environment through env(1).
//
// No tracer may outlive its trace, so every tracer runs
//
//   - in a process group of its own, which Stop (SIGINT, then SIGKILL after a
//     grace period) and Kill (SIGKILL) signal as a whole;
//   - when cgroup v2 is available and writable, in a cgroup of its own,
//     "<parent>/<name>", entered atomically at fork; Kill writes
//     cgroup.kill, which reaches even processes that left the process group;
//   - with SIGKILL as its parent-death signal, so it dies with the endpoint.
//     Its own children do not; Cleanup kills them from their cgroup the next
//     time the endpoint starts.
//
// When the tracer exits, whatever it left in its process group and cgroup is
// killed and the cgroup is removed.
//
// Ownership: the caller owns the Process and must read Process.Stdout until
// EOF (the tracer blocks when the pipe is full) or call
// Process.CloseStdout. The Process owns one goroutine, locked to the OS
// thread that forked the tracer, from fork until the tracer is reaped, and a
// stderr reader that keeps only the tail (Command.StderrLimit bytes); both
// end by the time Process.Done is closed, whether or not the caller reads
// stdout.
//
// Caveats: without a cgroup (cgroup v2 missing or not writable, or disabled
// with CgroupParent "-"), a process that moved to another process group or
// session escapes Kill and may keep stdout open, so EOF may never come; the
// caller then closes stdout after Done. Through sudo, the parent-death signal
// does not survive the set-user-ID exec, and an unprivileged endpoint can
// only SIGKILL sudo itself (Kill sends SIGTERM first, which sudo relays).
package tracer
