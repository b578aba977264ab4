// Package bench produces BENCHMARKS.md: the whole-process benchmarks of
// lambda-endpoint, each result set against a baseline measured in the same
// run so that it holds on a noisy shared machine.
//
// Everything lives in test files behind the build tag "bench", so that
// "go test ./..." and "make test" never run it. "make bench" runs the Go
// benchmarks of every package into var/gobench.txt, then
//
//	BENCH_OUT=$PWD/BENCHMARKS.md BENCH_GOBENCH=$PWD/var/gobench.txt \
//	    go test -tags bench -run '^TestBenchReport$' -count=1 -timeout 60m -v ./tests/bench
//
// TestBenchReport builds the endpoint (without the race detector) and the
// fake tracer, then measures, in sections:
//
//  1. overhead: the slowdown of a small C program (testdata/traced.c) under
//     the generated bpftrace script of each trace mode, against a
//     count-only script (the floor); needs root, bpftrace and gcc;
//  2. api: the authenticated API's throughput and latency (in process, on
//     loopback, SQLite store with 100 templates) with a repeated header and
//     a fresh header per request, against the same handlers without auth;
//  3. submit: submission throughput of 256 MiB of tracer output from the
//     endpoint binary to a platformtest receiver, against a bare loop that
//     PUTs the same chunk bodies over one keep-alive connection (targets:
//     at least 0.8x the loop and 100 MB/s); on a miss, a CPU profile of the
//     same pipeline in process says where time went;
//  4. scale: 1, 50 and 200 concurrent traces (testdata/burst.sh runs the
//     fake tracer in bursts): delivery, RSS, CPU, threads and goroutines
//     (from a SIGQUIT dump) of the endpoint process, idle RSS;
//  5. start: latency of POST /trace/start and the time to a tracer's first
//     output at the platform;
//  6. endpoint: the traced program (testdata/traced.c) through the real
//     endpoint binary with real bpftrace, delivering to a platformtest
//     receiver in a child process (TestReceiverProcess), against the same
//     generated script run by hand with stdout to a file (target: at most
//     1.05x, each mode) and the count-only floor; it reports the endpoint's
//     and the receiver's CPU, bytes and lines delivered, lost events, and
//     the endpoint's syscalls per MB; the program starts once the tracer
//     holds a perf event descriptor per CPU and per probe (/proc/PID/fd);
//     throughEngines adds rows per BPF engine ("engine" in /trace/start);
//     needs root, bpftrace and gcc;
//  7. cpu: the endpoint's CPU-seconds per GB of tracer output, written by
//     the fake tracer line by line (140-byte lines, one write(2) each, as
//     fast as possible and paced; target at most 5) and in bulk (1 KiB
//     lines in 64 KiB writes; target at most 3), with the receiver's CPU
//     and the endpoint's syscalls and context switches per MB; one bulk row
//     to the reference receiver ("lambda-endpoint receive") for comparison.
//
// Environment: BENCH_OUT is the report's path (default ../../BENCHMARKS.md,
// the repository root); BENCH_SECTIONS runs only some sections (keys above,
// comma-separated); BENCH_GOBENCH names "go test -bench" output to append.
// TestProfileSubmit (BENCH_PROFILE=FILE) writes a CPU profile of one
// in-process submission run.
//
// A section that cannot run here (no root, no bpftrace) is reported as
// skipped; under CI=true that is a failure. A missed target does not fail
// the test: the report says by how much it was missed and why. A section
// that breaks (an error, undelivered bytes) fails the test after the
// report is written.
package bench
