//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/tracer/native"
)

// nativeWay is one way of the native section: an overheadWay (run times by
// round) plus what the runs counted.
type nativeWay struct {
	overheadWay
	Mode   string        // native: the trace mode; "" for the bpftrace ways
	CPU    time.Duration // the tracer's CPU over every run: bpftrace's own, or the endpoint's during the runs
	Events int64         // probe hits over every run (entries and returns)
	Lost   int64         // events reported lost over every run
	Lines  int64         // lines written over every run (bpftrace to a file)
}

// Targets of the native section (issue 12).
const (
	nativeEventsTarget  = 1.15
	nativeCallsTarget   = 1.15
	nativeSummaryTarget = 1.05
	nativeCPUTarget     = 0.5 // CPU-seconds per million events
)

// benchNative measures, interleaved in each round, testdata/traced.c under
// the count-only bpftrace floor, under bpftrace's events script writing to
// a file, and under the native engine through the real endpoint in each
// mode; plus the CPU each engine spent per million events and the events
// it lost.
func benchNative(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("`testdata/traced.c` (gcc -O2) calls `f` %d times (%d probe hits: entry and return); its "+
		"wall-clock run time is measured under the count-only bpftrace script (the floor, as in section 1), under "+
		"bpftrace's `events` script (`tracer.Script`, `BPFTRACE_PERF_RB_PAGES=256` as the endpoint sets it) with stdout "+
		"to a file, and under the native engine (`\"engine\":\"native\"`) through the endpoint binary in each mode, "+
		"delivering to a `platformtest` receiver. %d rounds, the ways interleaved in each; the ratio is the median "+
		"of the per-round ratios to the floor. CPU: bpftrace's own utime+stime for its whole run; for the native "+
		"engine the endpoint process's utime+stime from just before the program starts until its output stops "+
		"growing (formatting, spooling and sending included), both per million probe hits.",
		overheadCalls, 2*overheadCalls, overheadReps)
	bpftrace, dir, bin, ok := tracedSetup(t, s)
	if !ok {
		return
	}
	floorScript := filepath.Join(dir, "floor.bt")
	eventsScript := filepath.Join(dir, "events.bt")
	script, err := tracer.Script(tracer.ScriptSpec{
		Type: messages.BPF, Process: bin, Functions: []string{"f"}, Lasting: time.Hour, Mode: messages.ModeEvents,
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{
		floorScript:  []byte(fmt.Sprintf("uprobe:\"%s\":f { @c = count(); }\nuretprobe:\"%s\":f { @r = count(); }\n", bin, bin)),
		eventsScript: script,
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	p := platformtest.New(t, benchUUID, benchSecret, platformtest.WithDiscardData())
	e := startEndpoint(t, env, endpointOptions{PlatformURL: p.URL(), BPFPath: bpftrace})
	body, _ := json.Marshal(map[string]any{"process": bin, "functions": []string{"f"}, "traceType": "BPF"})
	var tmpl struct {
		TraceNo int64 `json:"traceNo"`
	}
	e.mustJSON("PUT", "/trace", string(body), http.StatusCreated, &tmpl)

	floor := &nativeWay{overheadWay: overheadWay{Name: "floor: bpftrace count only"}}
	toFile := &nativeWay{overheadWay: overheadWay{Name: "bpftrace, mode events, stdout to a file"}}
	ways := []*nativeWay{floor, toFile}
	for _, m := range []struct {
		mode   string
		target float64
	}{{"events", nativeEventsTarget}, {"calls", nativeCallsTarget}, {"summary", nativeSummaryTarget}} {
		ways = append(ways, &nativeWay{overheadWay: overheadWay{Name: "native, mode " + m.mode, Target: m.target}, Mode: m.mode})
	}
	// The engine alone, in this process with its output discarded: what
	// the engine costs without the endpoint's spool and delivery.
	alone := map[*nativeWay]bool{}
	for _, mode := range []string{"events", "calls", "summary"} {
		w := &nativeWay{overheadWay: overheadWay{Name: "native engine alone, mode " + mode + " (in process, output discarded)"}, Mode: mode}
		ways = append(ways, w)
		alone[w] = true
	}
	tick := clockTick()
	for rep := 0; rep < overheadReps; rep++ {
		for _, w := range ways {
			if w.Err != "" {
				continue
			}
			var d time.Duration
			switch {
			case w == floor:
				var tr tracedRun
				tr, err = runUnderBpftrace(bpftrace, floorScript, bin, nil)
				d = tr.Took
			case alone[w]:
				var nr nativeRun
				nr, err = runNativeAlone(bin, messages.Mode(w.Mode))
				d = nr.Took
				w.CPU += nr.CPU
				w.Lost += nr.Lost
				w.Events += 2 * overheadCalls
			case w == toFile:
				var fr throughRun
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				fr, err = runToFile(ctx, bpftrace, &throughWay{Kind: kindByHand, Script: script, Path: eventsScript}, bin, filepath.Join(dir, "events.out"))
				cancel()
				d = fr.Took
				w.CPU += fr.TracerCPU
				w.Lines += fr.Lines
				w.Lost += fr.Lost
				w.Events += 2 * overheadCalls
			default:
				var nr nativeRun
				nr, err = runNative(e, p, tmpl.TraceNo, w.Mode, bin, tick)
				d = nr.Took
				w.CPU += nr.CPU
				w.Lost += nr.Lost
				w.Events += 2 * overheadCalls
			}
			if err != nil {
				t.Errorf("%s, round %d: %v", w.Name, rep+1, err)
				w.Err = err.Error()
				continue
			}
			w.Runs = append(w.Runs, d)
			if w.ByRep == nil {
				w.ByRep = map[int]time.Duration{}
			}
			w.ByRep[rep] = d
			t.Logf("%s round %d: %s", w.Name, rep+1, fmtDur(d))
		}
	}

	base := median(floor.Runs)
	for _, w := range ways {
		r := row{Name: w.Name, Value: "not available", Baseline: fmtDur(base), Ratio: math.NaN()}
		if len(w.Runs) > 0 {
			r.Value = fmtDur(median(w.Runs))
			if w != floor {
				r.Ratio = roundRatio(&w.overheadWay, &floor.overheadWay)
			}
		}
		if w == floor {
			r.Baseline = ""
		}
		if w.Target > 0 {
			r.Target = fmt.Sprintf("≤ %.2fx", w.Target)
			r.Met = atMost(r.Ratio, w.Target)
		}
		s.addRow(r)
		if w.Err != "" {
			s.note("%s: %s", w.Name, w.Err)
		}
		if len(w.Runs) > 0 {
			s.note("%s: runs %s", w.Name, fmtDurs(w.Runs))
		}
	}
	perM := func(w *nativeWay) float64 {
		if w.Events == 0 {
			return math.NaN()
		}
		return w.CPU.Seconds() / float64(w.Events) * 1e6
	}
	bt := perM(toFile)
	for _, w := range ways[2:] {
		v := perM(w)
		s.addRow(row{Name: w.Name + ": CPU per million events", Value: fmt.Sprintf("%.3f s", v),
			Baseline: fmt.Sprintf("%.3f s (bpftrace to a file)", bt), Ratio: ratio(v, bt),
			Target: fmt.Sprintf("≤ %.1f s", nativeCPUTarget), Met: atMostValue(v, nativeCPUTarget)})
	}
	for _, w := range ways[2:] {
		ok := len(w.Runs) > 0 && w.Lost == 0
		s.addRow(row{Name: w.Name + ": events lost (default 4 MiB ring)", Value: fmt.Sprint(w.Lost),
			Baseline: fmt.Sprintf("%d (bpftrace to a file)", toFile.Lost), Ratio: math.NaN(), Target: "0", Met: &ok})
	}
	s.note("bpftrace to a file: %d JSON lines written and %d events reported lost over %d runs of %d events each; its CPU includes its start-up (parsing, loading, attaching: about a second).",
		toFile.Lines, toFile.Lost, len(toFile.Runs), 2*overheadCalls)
	s.note("The native engine writes each event as a 64-byte ring-buffer record without waking the reader (`BPF_RB_NO_WAKEUP`, read every 10 ms, a tenth of `flush-interval` at most) and formats JSON in Go; its lost counter is the kernel's, so the lost rows are exact.")
}

// atMostValue returns a Met value for v <= limit.
func atMostValue(v, limit float64) *bool {
	ok := !math.IsNaN(v) && v <= limit
	return &ok
}

// runNativeAlone runs the program under a native trace started in this
// process (mode events, default ring buffer), its output read and
// discarded; CPU is this process's utime+stime from just before the
// program starts until the trace has ended and released everything.
func runNativeAlone(bin string, mode messages.Mode) (nativeRun, error) {
	var res nativeRun
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr, err := native.Start(ctx, native.Spec{Process: bin, Functions: []string{"f"}, Mode: mode})
	if err != nil {
		return res, err
	}
	read := make(chan error, 1)
	var summary bytes.Buffer // mode summary: the summary line, checked below
	go func() {
		var w io.Writer = io.Discard
		if mode == messages.ModeSummary {
			w = &summary
		}
		_, err := io.Copy(w, tr.Output())
		read <- err
	}()
	cpu0 := selfCPU() // Start returned: every probe is attached
	res.Took, err = runTraced(bin)
	tr.Stop()
	rerr := <-read
	r, werr := tr.Wait()
	res.CPU = selfCPU() - cpu0
	res.Lost = int64(r.LostEvents)
	if err == nil {
		err = errors.Join(rerr, werr)
	}
	want := uint64(2 * overheadCalls) // an entry and a return record per call
	switch mode {
	case messages.ModeCalls:
		want = overheadCalls // a record per call
	case messages.ModeSummary:
		want = r.LostEvents // only the summary line: no record
		if line := fmt.Sprintf(`"calls":%d}`, overheadCalls-r.LostEvents); err == nil && !bytes.Contains(summary.Bytes(), []byte(line)) {
			err = fmt.Errorf("summary %q has no %s", summary.String(), line)
		}
	}
	if err == nil && r.Records+r.LostEvents != want {
		err = fmt.Errorf("%d records read and %d lost, want %d in all", r.Records, r.LostEvents, want)
	}
	return res, err
}

// selfCPU is this process's utime+stime.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// nativeRun is one run of the program under the native engine.
type nativeRun struct {
	Took time.Duration
	CPU  time.Duration // the endpoint's utime+stime during the run
	Lost int64         // finished.lostEvents
}

// runNative starts template id with the native engine in mode, waits until
// it runs (its probes are attached), runs the program, waits until the
// trace's output stops growing, reads the endpoint's CPU, kills the trace
// and waits for its finished message.
func runNative(e *endpoint, p *platformtest.Platform, id int64, mode, bin string, tick time.Duration) (nativeRun, error) {
	var res nativeRun
	st, b, err := e.do("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":600,"mode":%q,"engine":"native"}`, id, mode))
	if err != nil || st != http.StatusOK {
		return res, fmt.Errorf("starting native trace: %d %s %v", st, b, err)
	}
	var started startResult
	if err := json.Unmarshal(b, &started); err != nil {
		return res, err
	}
	running := func() (state string, read int64, err error) {
		var ri struct {
			State     string `json:"state"`
			BytesRead int64  `json:"bytesRead"`
		}
		st, b, err := e.do("GET", "/trace/running?path="+started.FilePath, "")
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("GET /trace/running: %d %s", st, b)
		}
		if err == nil {
			err = json.Unmarshal(b, &ri)
		}
		return ri.State, ri.BytesRead, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		state, _, err := running()
		if err != nil {
			return res, err
		}
		if state == "running" {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("native trace not running after 30 s (state %s)", state)
		}
	}
	// "running": the engine's Start returned, every probe is attached.
	cpu0, err := cpuTime(e.PID(), tick)
	if err != nil {
		return res, err
	}
	res.Took, err = runTraced(bin)
	if err != nil {
		return res, err
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	var rerr error
	if err := waitQuiet(qctx, func() int64 {
		_, read, err := running()
		if err != nil {
			rerr = err
			return -1
		}
		return read
	}); err != nil {
		return res, err
	}
	if rerr != nil {
		return res, rerr
	}
	cpu1, err := cpuTime(e.PID(), tick)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if st, b, err := e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, started.FilePath)); err != nil || st != http.StatusOK {
		return res, fmt.Errorf("killing native trace: %d %s %v", st, b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec, err := p.WaitFinished(ctx, started.FilePath)
	if err != nil {
		return res, fmt.Errorf("waiting for the finished message: %w", err)
	}
	res.Lost = rec.Finished.LostEvents
	if rec.Finished.Reason != "killed" || rec.Finished.Code != 0 {
		return res, fmt.Errorf("native trace finished %+v", rec.Finished)
	}
	return res, nil
}
