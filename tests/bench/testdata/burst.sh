#!/bin/sh
# burst.sh: the tracer stand-in of the scale benchmark. The endpoint runs it
# as "burst.sh SCRIPT"; it runs the fake tracer ($BPFTRACE_BENCH_FAKE, which
# takes its mode from BPFTRACE_FAKE_MODE, e.g. "flood 65536")
# $BPFTRACE_BENCH_BURSTS times, $BPFTRACE_BENCH_PAUSE seconds apart, so that
# one trace writes its output in bursts spread over time (the fake tracer
# has no such mode yet). Every process it starts shares its stdout.
i=0
while [ "$i" -lt "$BPFTRACE_BENCH_BURSTS" ]; do
	"$BPFTRACE_BENCH_FAKE" "$1" || exit $?
	i=$((i + 1))
	sleep "$BPFTRACE_BENCH_PAUSE"
done
