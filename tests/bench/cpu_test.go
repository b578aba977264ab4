//go:build bench

package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

const (
	cpuReps      = 3         // runs of each way, interleaved; medians
	cpuPacedRate = 100000    // lines per second of the paced way: about bpftrace's rate in mode events here
	linewiseLine = 140       // the fake tracer's linewise line length
	cpuLineBytes = 128 << 20 // tracer output per run, line by line as fast as possible
	cpuPaced     = 48 << 20  // the same, paced (about 3.6 s at cpuPacedRate)
	cpuBulkBytes = 256 << 20 // bulk writes
	cpuRefBytes  = 64 << 20  // bulk writes to the reference receiver, which is slower
)

// cpuWay is one kind of tracer output.
type cpuWay struct {
	Name   string
	Mode   string  // the fake tracer's mode
	Bytes  int64   // what it writes
	Target float64 // endpoint CPU-s per GB, at most; 0 for none
	Ref    bool    // to the reference receiver instead of the platformtest one
	Rate   int     // bytes per second the tracer writes; 0: as fast as it can
	Runs   []cpuRun
	Bare   []float64 // the bare loop's CPU-s/GB for the same bytes at the same rate
}

// cpuRun is one delivery of a way's output.
type cpuRun struct {
	Took               time.Duration // start until the receiver held every byte
	Endpoint, Receiver counters      // deltas over Took
}

// benchCPU measures the endpoint's CPU per GB of tracer output, written line
// by line as bpftrace writes it and in bulk, delivered to the reference
// receiver in a process of its own.
func benchCPU(t *testing.T, env *benchEnv, s *section) {
	ways := []*cpuWay{
		{Name: "line by line (140-byte lines, one write each), as fast as possible",
			Mode: fmt.Sprintf("linewise %d 0 hold", cpuLineBytes), Bytes: roundUp(cpuLineBytes, linewiseLine), Target: 5},
		{Name: fmt.Sprintf("line by line, paced at %d lines/s (%.0f MB/s)", cpuPacedRate, cpuPacedRate*linewiseLine/1e6),
			Mode: fmt.Sprintf("linewise %d %d hold", cpuPaced, cpuPacedRate), Bytes: roundUp(cpuPaced, linewiseLine), Target: 5,
			Rate: cpuPacedRate * linewiseLine},
		{Name: "bulk (1024-byte lines, 64 KiB writes)",
			Mode: fmt.Sprintf("flood %d hold", cpuBulkBytes), Bytes: roundUp(cpuBulkBytes, floodLine), Target: 3},
		{Name: "bulk, to the reference receiver (`lambda-endpoint receive`)",
			Mode: fmt.Sprintf("flood %d hold", cpuRefBytes), Bytes: roundUp(cpuRefBytes, floodLine), Ref: true},
	}
	s.Intro = fmt.Sprintf("CPU the endpoint process spends per GB of tracer output. The endpoint binary (built without -race, "+
		"default config: %d-byte chunks, flush-interval 1s, spool-sync `interval`) runs the fake tracer, which writes NDJSON either "+
		"line by line, one write(2) per 140-byte line as bpftrace prints one event per write (as fast as it can, and paced "+
		"to %d lines/s so that the endpoint's reads find few lines each), or in bulk (1024-byte lines, 64 KiB writes). The "+
		"output goes to a `platformtest` receiver (WithDiscardData: it checks the protocol and keeps a SHA-256) in a process of "+
		"its own on loopback; the last row goes to the reference receiver (`lambda-endpoint receive`, its own process, its "+
		"directory on tmpfs so that its two fsyncs per chunk wait for no disk), whose cost is shown for comparison. The bare-loop column is the CPU of a process that PUTs the same number of bytes in full chunks to the same receiver at the same rate (the paced way's, else as fast as it can) and does nothing else: no tracer, pipe, spool or actors (its process start and the making of the chunks are included); it is what sending alone costs on this machine. The fake tracer stays alive until its output is delivered (mode option `hold`), so that the endpoint's /proc "+
		"counters are its own (a reaped child's are added to its parent's). CPU is utime+stime from /proc/PID/stat from just "+
		"before POST /trace/start until the receiver holds every byte; syscalls are /proc/PID/io syscr (read-like) and syscw "+
		"(write-like), context switches summed over /proc/PID/task/*/status. %d runs of each, interleaved; medians. GB = 10^9 "+
		"bytes, MB = 10^6.", submitChunk, cpuPacedRate, cpuReps)
	tick := clockTick()
	load0 := loadAvg()
	defer func() { s.note("Load average (1, 5, 15 min) before the runs: %s; after: %s.", load0, loadAvg()) }()
	recv, ref := startPlatformProc(t, true), startReceiver(t, env)
	e := startEndpoint(t, env, endpointOptions{PlatformURL: recv.URL()})
	eRef := startEndpoint(t, env, endpointOptions{PlatformURL: ref.URL()})
	ids := map[*cpuWay]int64{}
	for _, w := range ways {
		if w.Ref {
			ids[w] = eRef.putFakeTemplate(env.FakeBin, w.Mode)
		} else {
			ids[w] = e.putFakeTemplate(env.FakeBin, w.Mode)
		}
	}
	for rep := 0; rep < cpuReps; rep++ {
		for _, w := range ways {
			ep, rc := e, receiver(recv)
			if w.Ref {
				ep, rc = eRef, ref
			}
			r, err := cpuDeliver(ep, rc, ids[w], w.Bytes, tick)
			if err != nil {
				t.Errorf("%s, run %d: %v", w.Name, rep+1, err)
				continue
			}
			w.Runs = append(w.Runs, r)
			t.Logf("%s run %d: %s, endpoint %.1f CPU-s/GB, receiver %.1f CPU-s/GB", w.Name, rep+1, fmtDur(r.Took),
				perGB(r.Endpoint.CPU, w.Bytes), perGB(r.Receiver.CPU, w.Bytes))
			if w.Ref {
				continue
			}
			// The bare loop: the same bytes in chunks to the same
			// receiver at the same rate, from a process of its own,
			// without a tracer, pipe, spool or actors.
			trace := fmt.Sprintf("/tmp/bare-cpu-%d-%d.trace", rep, len(w.Bare))
			_, used, err := bareProc(recv.URL(), env.Header, trace, w.Bytes, w.Rate)
			recv.Remove(trace)
			if err != nil {
				t.Errorf("%s, bare loop run %d: %v", w.Name, rep+1, err)
				continue
			}
			w.Bare = append(w.Bare, perGB(used, w.Bytes))
		}
	}
	tb := "| output | per run | delivered in (median) | endpoint CPU-s / GB | bare loop CPU-s / GB (same bytes and rate) | receiver CPU-s / GB | endpoint read syscalls / MB | " +
		"endpoint write syscalls / MB | endpoint context switches / MB |\n|---|---|---|---|---|---|---|---|---|\n"
	for _, w := range ways {
		if len(w.Runs) == 0 && w.Target > 0 {
			s.addRow(row{Name: "endpoint CPU per GB, " + w.Name, Value: "not available", Ratio: math.NaN(),
				Target: fmt.Sprintf("≤ %.0f CPU-s/GB", w.Target)})
			continue
		}
		var ep, rc, rd, wr, cs []float64
		var took []time.Duration
		for _, r := range w.Runs {
			mb := float64(w.Bytes) / 1e6
			ep, rc = append(ep, perGB(r.Endpoint.CPU, w.Bytes)), append(rc, perGB(r.Receiver.CPU, w.Bytes))
			rd, wr, cs = append(rd, float64(r.Endpoint.SysR)/mb), append(wr, float64(r.Endpoint.SysW)/mb), append(cs, float64(r.Endpoint.CtxSw)/mb)
			took = append(took, r.Took)
		}
		v := medianFloat(ep)
		if w.Target > 0 {
			s.addRow(row{Name: "endpoint CPU per GB, " + w.Name, Value: fmt.Sprintf("%.1f CPU-s/GB", v),
				Baseline: fmt.Sprintf("%.0f CPU-s/GB (target)", w.Target), Ratio: v / w.Target,
				Target: fmt.Sprintf("≤ %.0f CPU-s/GB", w.Target), Met: atMost(v, w.Target)})
		} else {
			s.addRow(row{Name: "endpoint CPU per GB, " + w.Name, Value: fmt.Sprintf("%.1f CPU-s/GB", v), Ratio: math.NaN()})
		}
		bare := "–"
		if len(w.Bare) > 0 {
			bare = fmt.Sprintf("%.1f", medianFloat(w.Bare))
		}
		tb += fmt.Sprintf("| %s | %s | %s (%.0f MB/s) | %.1f | %s | %.1f | %.0f | %.0f | %.0f |\n", w.Name, fmtMB(w.Bytes),
			fmtDur(median(took)), mbps(w.Bytes, median(took)), v, bare, medianFloat(rc), medianFloat(rd), medianFloat(wr), medianFloat(cs))
		if b := medianFloat(w.Bare); len(w.Bare) > 0 && w.Target > 0 && v > w.Target {
			if b > w.Target {
				s.note("%s: the target (%.0f CPU-s/GB) is below what sending alone costs on this machine: the bare loop, "+
					"the same chunks to the same receiver at the same rate with nothing else, used %.1f CPU-s/GB. The "+
					"endpoint used %.2fx that; the difference is the pipe read, the spool (the segment write with its "+
					"CRC-32C and the SHA-256 of the finished message, the read back) and the actors.", w.Name, w.Target, b, v/b)
			} else {
				s.note("%s: the bare loop (sending alone at the same rate) used %.1f CPU-s/GB, within the target; the endpoint %.2fx that.",
					w.Name, b, v/b)
			}
		}
		var runs []string
		for _, x := range ep {
			runs = append(runs, fmt.Sprintf("%.1f", x))
		}
		s.note("%s: endpoint CPU-s/GB per run %s; delivered in %s.", w.Name, strings.Join(runs, ", "), fmtDurs(took))
	}
	s.Extra = append(s.Extra, tb)
}

// cpuDeliver runs one trace of template id, whose tracer writes n bytes and
// holds, and measures the endpoint and the receiver until the receiver has
// every byte; then it kills the trace and checks the finished message.
func cpuDeliver(e *endpoint, recv receiver, id, n int64, tick time.Duration) (cpuRun, error) {
	var r cpuRun
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e0, r0 := readCounters(e.PID(), tick), readCounters(recv.PID(), tick)
	t0 := time.Now()
	st, _, err := e.start(id, 600)
	if err != nil {
		return r, err
	}
	defer recv.Remove(st.FilePath)
	for recv.OutSize(st.FilePath) < n {
		select {
		case <-ctx.Done():
			_ = e.kill(st.FilePath)
			return r, fmt.Errorf("the receiver holds %d of %d bytes: %w", recv.OutSize(st.FilePath), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.Took = time.Since(t0)
	r.Endpoint, r.Receiver = readCounters(e.PID(), tick).sub(e0), readCounters(recv.PID(), tick).sub(r0)
	if err := e.kill(st.FilePath); err != nil {
		return r, err
	}
	fin, err := recv.WaitFinished(ctx, st.FilePath)
	if err != nil {
		return r, err
	}
	if fin.Bytes != n || recv.OutSize(st.FilePath) != n {
		return r, fmt.Errorf("delivered %d bytes (finished says %d, reason %q), want %d", recv.OutSize(st.FilePath), fin.Bytes, fin.Reason, n)
	}
	return r, nil
}

// perGB is CPU seconds per 10^9 of n bytes.
func perGB(cpu time.Duration, n int64) float64 { return cpu.Seconds() / (float64(n) / 1e9) }

// roundUp is n rounded up to a multiple of line.
func roundUp(n, line int64) int64 { return (n + line - 1) / line * line }
