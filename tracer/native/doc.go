// Package native is the endpoint's own BPF engine: it runs one uprobe trace
// in process with github.com/cilium/ebpf, without bpftrace, and prints the
// same JSON lines as the bpftrace scripts of tracer.Script in each of the
// three modes (events, calls, summary), so a platform cannot tell the
// engines apart except by speed and exactness.
//
// # How a trace runs
//
// Start resolves the functions against the binary's ELF symbol tables
// ("*" wildcards expanded in name order, each function once), creates the
// maps, builds one small BPF program per probe with the asm package (no
// clang: nothing is compiled outside Go), and attaches them with
// link.OpenExecutable(...).Uprobe / Uretprobe:
//
//   - a BPF ring buffer (Spec.RingBytes, default 4 MiB) receives one
//     64-byte record per event (see format.go for its layout); records are
//     submitted with BPF_RB_NO_WAKEUP and read every Spec.PollInterval
//     (default 10 ms, at most a tenth of Spec.FlushInterval), which costs
//     the traced program far less than a wakeup per event; a record that
//     finds the ring more than half full wakes the reader at once; the
//     comm is read from the current task's BTF pointer at the offset of
//     comm in the kernel's struct task_struct (read from
//     /sys/kernel/btf/vmlinux once per process): two loads instead of
//     bpf_get_current_comm (about 100 ns less per record), which stays the
//     fallback when the kernel's BTF does not say;
//   - a per-CPU counter counts in the kernel every record that found the
//     ring full and every call whose entry could not be stored:
//     Result.LostEvents is exact;
//   - mode calls and summary store each call's entry time and look it up
//     at return: one record per completed call, or a count in a per-CPU
//     log2 histogram (65 buckets per function) read when the trace ends
//     and printed as the summary lines, exact and never truncated. In a C
//     binary the entry goes to a small stack of the thread's innermost
//     pending calls (16, matched by stack pointer) in BPF task storage
//     (bpf_task_storage_get on the current task: no hash map update,
//     lookup and delete per call, about half the BPF time of a call), and
//     only calls nested deeper than that to the hash map keyed by frame;
//     a Go binary's calls always go to the hash map (see below: a
//     goroutine may change threads during a call). The task storage is
//     allocated for each thread that enters a probed function (under 400
//     bytes) and freed when the thread exits or the trace ends;
//   - Spec.PID filters in the kernel on the thread group id, before
//     anything is recorded.
//
// A goroutine owned by the Trace formats the records in Go (comm escaped
// as JSON: any process name yields a valid line) into chunks of up to
// 192 KiB, handed over in memory (at most 6 waiting, no pipe: no byte
// crosses the kernel, which was a third of the engine's CPU) at every
// poll to Trace.Output, an io.Reader with SetReadDeadline like
// tracer.Process.Stdout, so the trace actor's pump reads either the same
// way. When the trace ends (Stop, the context's end, or Spec.Lasting) the
// goroutine detaches every probe, drains the ring, prints the summary,
// closes every map and program, and ends Output: EOF. Wait returns the
// Result.
//
// # Ownership and cleanup
//
// The endpoint runs a trace with this package when its start asks for
// "engine":"native" (see package actors: the trace actor's launcher calls
// Start, its pump reads Output like a tracer's stdout, its waiter Wait).
//
// The trace's goroutine never lets a panic out: a panic while it reads or
// formats ends the trace as if it were stopped (probes detached, maps
// closed, Output at EOF) and Wait returns it as an error; Start returns a
// panic while loading as an error, with everything released.
//
// Every probe, program and map is a file descriptor of the endpoint
// process (uprobes are perf events attached through the perf_uprobe PMU),
// so the kernel detaches and frees all of them when the endpoint exits,
// however it exits: there is nothing to orphan. The Trace closes them
// itself when it ends. The caller owns Output: it must read it until EOF
// or call CloseOutput, since a full Output (6 chunks waiting) blocks the
// formatter (the ring then fills and the kernel counts what it drops).
//
// # Go binaries
//
// A uretprobe replaces the return address on the stack, which the Go
// runtime walks and copies; it crashes the program ("unknown caller pc").
// So in a Go binary (recognised by debug/buildinfo) the engine never uses
// one: it disassembles the function's code (golang.org/x/arch/x86/x86asm,
// a linear sweep that fails rather than guess) and puts an uprobe on every
// RET instruction. The entry probe sits right after the stack-check
// prologue (CMP against g.stackguard0, then the conditional jump to the
// runtime.morestack path), not at the first instruction: a call that must
// grow its stack runs the prologue twice (morestack jumps back to the
// start), and a probe at offset 0 would count it twice. Calls are keyed by
// (goroutine, stack.hi - SP) read from R14 (the register ABI, Go 1.17 and
// later), which stays the same when the goroutine moves to another thread
// or its stack is copied during the call; C functions are keyed by (thread,
// SP) as in the bpftrace scripts.
//
// Limits: amd64 only (ErrNotSupported elsewhere). A function the compiler
// inlined everywhere has no symbol (ErrNoSymbol, with that reason); one
// that has a symbol but is also inlined at some call sites is traced only
// where it is really called. Calls that never return (panics unwinding
// through a Go function, longjmp) leave their entry behind until the trace
// ends (in C, until a call or return of that thread at an outer frame
// drops it from the thread's stack); at most 16384 calls may be pending at
// once in the hash map, beyond which calls are counted lost. The kernel
// may refuse a task storage lookup when another BPF program is using task
// storage on the same CPU at that instant: at an entry the call then goes
// to the hash map (nothing lost), at a return the call is missed without
// being counted, as the kernel also skips, uncounted, any probe that fires
// while another BPF tracing program runs on that CPU (for bpftrace too). A Go function that leaves by a tail jump instead of RET is
// refused (ErrNoReturn) when it has no RET at all.
package native
