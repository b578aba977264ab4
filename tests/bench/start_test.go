//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

const (
	startCount      = 200 // POST /trace/start requests measured
	firstOutputReps = 5   // traces per first-output measurement; medians
)

// benchStart measures how long POST /trace/start takes and how long the
// first output of a trace takes to reach the platform.
func benchStart(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("The endpoint binary (`max-traces = 256`, `flush-interval = 1s`) gets %d POST /trace/start requests "+
		"one after the other for a fake tracer `silent 1` (`lasting` 1), each followed by a GET /heartbeat as the baseline "+
		"of a request that does nothing; latencies as the client sees them over a keep-alive connection. Then, %d times each, the time from "+
		"POST /trace/start until the platform receives chunk 0, for a tracer that prints one line and then stays quiet, one that "+
		"prints 100 KiB at once, and (with root and bpftrace) the real bpftrace, whose first delivered line is the first event's (its \"Attaching N probes...\" notice is not delivered), made by one call of the traced program once the probes are attached.",
		startCount, firstOutputReps)
	p := platformtest.New(t, benchUUID, benchSecret, platformtest.WithDiscardData())
	e := startEndpoint(t, env, endpointOptions{PlatformURL: p.URL(), Extra: "max-traces = 256"})
	silent := e.putFakeTemplate(env.FakeBin, "silent 1")
	// Warm up: the first request pays for verifying the header.
	e.mustJSON("GET", "/heartbeat", "", http.StatusOK, nil)

	var starts, beats []time.Duration
	var paths []string
	for i := 0; i < startCount; i++ {
		r, d, err := e.start(silent, 1)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		starts = append(starts, d)
		paths = append(paths, r.FilePath)
		t0 := time.Now()
		if st, b, err := e.do("GET", "/heartbeat", ""); err != nil || st != http.StatusOK {
			t.Fatalf("heartbeat: %d %s %v", st, b, err)
		}
		beats = append(beats, time.Since(t0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, path := range paths {
		if rec, err := p.WaitFinished(ctx, path); err != nil {
			t.Errorf("trace %s: %v", path, err)
		} else if rec.Finished.Reason != "completed" {
			t.Errorf("trace %s ended %q, want completed", path, rec.Finished.Reason)
		}
	}
	p99, b99 := percentile(starts, 99), percentile(beats, 99)
	s.addRow(row{Name: "POST /trace/start p99", Value: fmtDur(p99), Baseline: fmtDur(b99) + " (heartbeat p99)",
		Ratio: ratio(float64(p99), float64(b99)), Target: "≤ 50 ms", Met: atMost(float64(p99), float64(50*time.Millisecond))})
	s.addRow(row{Name: "POST /trace/start p50", Value: fmtDur(percentile(starts, 50)),
		Baseline: fmtDur(percentile(beats, 50)) + " (heartbeat p50)", Ratio: ratio(float64(percentile(starts, 50)), float64(percentile(beats, 50)))})
	s.addRow(row{Name: "POST /trace/start max", Value: fmtDur(percentile(starts, 100)),
		Baseline: fmtDur(percentile(beats, 100)) + " (heartbeat max)", Ratio: ratio(float64(percentile(starts, 100)), float64(percentile(beats, 100)))})

	quiet := e.putFakeTemplate(env.FakeBin, "lines 2 5")
	burst := e.putFakeTemplate(env.FakeBin, "flood 102400")
	for _, c := range []struct {
		name string
		id   int64
	}{{"one line, then quiet (fake `lines 2 5`)", quiet}, {"100 KiB at once (fake `flood 102400`)", burst}} {
		ds, err := firstOutput(e, p, c.id, 10)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		s.addRow(row{Name: "start → chunk 0 at the platform: " + c.name, Value: fmtDur(median(ds)),
			Baseline: "1 s (flush-interval)", Ratio: ratio(float64(median(ds)), float64(time.Second))})
		s.note("%s: %s.", c.name, fmtDurs(ds))
	}
	realBpftrace(t, env, p, s)
	s.note("POST /trace/start answers once the trace is accepted; the tracer is launched and attaches in the background, " +
		"so its latency does not include bpftrace's start-up (compare the real-bpftrace row).")
	s.note("A quiet tracer's first line waits for `flush-interval` (1 s) before it is sent as a short chunk; output that " +
		"fills a chunk (or ends) is sent at once.")
}

// firstOutput starts template id firstOutputReps times, one after the
// other, and returns the times from the start request to chunk 0 at the
// platform.
func firstOutput(e *endpoint, p *platformtest.Platform, id int64, lasting int) ([]time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < firstOutputReps; i++ {
		t0 := time.Now()
		r, _, err := e.start(id, lasting)
		if err != nil {
			return ds, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = p.WaitFor(ctx, r.FilePath, func(tr platformtest.TraceRecord) bool { return tr.ChunkCount >= 1 })
		cancel()
		if err != nil {
			return ds, err
		}
		ds = append(ds, time.Since(t0))
	}
	return ds, nil
}

// realBpftrace measures start latency and first output with the real
// bpftrace on the traced test program, when root and bpftrace are here.
func realBpftrace(t *testing.T, env *benchEnv, p *platformtest.Platform, s *section) {
	bpftrace, err := exec.LookPath("bpftrace")
	if os.Geteuid() != 0 || err != nil {
		s.note("The real-bpftrace rows were skipped: they need root and bpftrace.")
		if inCI() {
			t.Errorf("real bpftrace: needs root and bpftrace (CI=true)")
		}
		return
	}
	bin, err := buildTraced(t.TempDir())
	if err != nil {
		s.note("The real-bpftrace rows were skipped: %v", err)
		return
	}
	e := startEndpoint(t, env, endpointOptions{PlatformURL: p.URL(), BPFPath: bpftrace})
	body, _ := json.Marshal(map[string]any{"process": bin, "functions": []string{"f"}, "traceType": "BPF"})
	var res struct {
		TraceNo int64 `json:"traceNo"`
	}
	e.mustJSON("PUT", "/trace", string(body), http.StatusCreated, &res)
	var starts, firsts []time.Duration
	for i := 0; i < firstOutputReps; i++ {
		t0 := time.Now()
		r, d, err := e.start(res.TraceNo, 2)
		if err != nil {
			t.Errorf("real bpftrace start: %v", err)
			return
		}
		starts = append(starts, d)
		// bpftrace's "Attaching N probes..." is not delivered (the
		// endpoint removes its notices): the first line is the first
		// event's, so the program calls f once as soon as the probes are
		// attached.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = firstEvent(ctx, e, r.FilePath, bin)
		if err == nil {
			_, err = p.WaitFor(ctx, r.FilePath, func(tr platformtest.TraceRecord) bool { return tr.ChunkCount >= 1 })
		}
		cancel()
		if err != nil {
			t.Errorf("real bpftrace first output: %v", err)
			return
		}
		firsts = append(firsts, time.Since(t0))
	}
	s.addRow(row{Name: "POST /trace/start with the real bpftrace (median)", Value: fmtDur(median(starts)),
		Baseline: fmtDur(median(firsts)) + " (its first line at the platform)", Ratio: ratio(float64(median(starts)), float64(median(firsts)))})
	s.addRow(row{Name: "start → chunk 0 at the platform: real bpftrace (attach, then one call of f)", Value: fmtDur(median(firsts)),
		Baseline: "1 s (flush-interval)", Ratio: ratio(float64(median(firsts)), float64(time.Second))})
	s.note("real bpftrace: start %s; first output %s.", fmtDurs(starts), fmtDurs(firsts))
}

// firstEvent waits until the bpftrace of the trace at path has attached its
// probes (a perf event per online CPU and per probe: uprobe, uretprobe,
// interval) and runs the traced program for one call.
func firstEvent(ctx context.Context, e *endpoint, path, bin string) error {
	for {
		ri, err := e.running(path)
		if err != nil {
			return err
		}
		if ri.PID != 0 {
			if err := waitPerfFDs(ctx, ri.PID, onlineCPUs()+3); err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bpftrace did not start: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if b, err := exec.CommandContext(ctx, bin, "1").CombinedOutput(); err != nil {
		return fmt.Errorf("running %s: %w: %s", bin, err, b)
	}
	return nil
}
