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
//     PUTs the same chunk bodies over one keep-alive connection; on a miss,
//     a CPU profile of the same pipeline in process says where time went;
//  4. scale: 1, 50 and 200 concurrent traces (testdata/burst.sh runs the
//     fake tracer in bursts): delivery, RSS, CPU, threads and goroutines
//     (from a SIGQUIT dump) of the endpoint process, idle RSS;
//  5. start: latency of POST /trace/start and the time to a tracer's first
//     output at the platform.
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
