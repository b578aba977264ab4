//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

const (
	throughRounds = 5                      // rounds; each runs every way once
	throughQuiet  = 500 * time.Millisecond // output quiet this long after the run: the tracer has printed what it held
	throughTarget = 1.05                   // the endpoint's run time at most this times bpftrace writing to a file
	throughRB     = "256"                  // BPFTRACE_PERF_RB_PAGES of the hand runs: the endpoint's default (lambda.bpf-perf-rb-pages)
)

// throughEngines are the BPF engines the section runs through the endpoint,
// each sent as "engine" in POST /trace/start ("" sends none: the endpoint's
// default, bpftrace). A file of this package may add one in an init
// function, e.g. throughEngines = append(throughEngines, "native"): each
// mode then gets a row for it, set against the same bpftrace-to-a-file
// baseline.
var throughEngines = []string{""}

// throughKind is how a way runs the trace.
type throughKind int

const (
	kindFloor    throughKind = iota // bpftrace, a count-only script
	kindByHand                      // bpftrace, the endpoint's script, stdout to a file
	kindEndpoint                    // the endpoint binary, to the receiver
)

// throughWay is one way of running the traced program.
type throughWay struct {
	Name   string
	Kind   throughKind
	Mode   messages.Mode
	Engine string      // kindEndpoint: "engine" of POST /trace/start, "" for none
	Base   *throughWay // kindEndpoint: the hand run of the same mode
	Script []byte      // the bpftrace script (floor, by hand; the endpoint generates the same)
	Path   string      // the script's file
	Err    string
	ByRnd  map[int]throughRun
}

// throughRun is what one run measured.
type throughRun struct {
	Took        time.Duration // the traced program's wall time
	Bytes       int64         // JSON output bytes: written to the file, or delivered to the receiver
	Lines       int64         // JSON lines among them
	Lost        int64         // events the tracer reported lost
	EndpointCPU time.Duration // endpoint process, from before the run until the finished message was delivered
	ReceiverCPU time.Duration // receiver process, same interval
	TracerCPU   time.Duration // by hand: bpftrace's utime+stime, its whole run
	Sys         counters      // endpoint syscalls from before the run until the output was delivered (tracer alive)
	SysBytes    int64         // bytes the endpoint had read by then
	Finish      string        // through the endpoint: the finished message's reason and code
}

// inProcess reports whether the engine runs inside the endpoint (no tracer
// process): every engine but bpftrace.
func (w *throughWay) inProcess() bool { return w.Engine != "" && w.Engine != "bpftrace" }

// benchThrough runs the traced program under bpftrace by hand and through
// the real endpoint, to a reference receiver in a process of its own.
func benchThrough(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("What the endpoint itself costs the traced host. `testdata/traced.c` (gcc -O2) calls `f` %d times, "+
		"traced at entry and return; its wall-clock run time is measured (a) under a count-only bpftrace script (the floor: the "+
		"probes themselves), (b) for each mode under the script the endpoint generates (`tracer.Script`) run by hand, "+
		"`bpftrace SCRIPT > file` with BPFTRACE_PERF_RB_PAGES=%s as the endpoint sets it (what a user does by hand), and (c) "+
		"through the endpoint binary (built without -race, real bpftrace, default config) started by PUT /trace + POST "+
		"/trace/start with that mode, delivering to a `platformtest` receiver in a process of its own on loopback (it checks the "+
		"protocol and keeps the bytes; the reference receiver `lambda-endpoint receive` costs about four times its CPU per GB, see "+
		"section 7, which on this 2-core host would take CPU from the traced program during the run). The program starts once the tracer has attached: when its process holds one perf "+
		"event descriptor per online CPU (the output buffers) plus one per uprobe, uretprobe and interval probe of the script, read from /proc/PID/fd; no fixed sleep. After the program, the tracer's output must be quiet for %s "+
		"(file size, or the endpoint's bytesRead), then bpftrace gets SIGINT (by hand) or POST /trace/kill (endpoint), and the "+
		"endpoint's run ends when the receiver has the finished message. %d rounds, the ways interleaved in each round; values "+
		"are medians, ratios the medians of the per-round ratios. CPU is utime+stime from /proc/PID/stat, from just before the "+
		"program starts until the finished message was received.",
		overheadCalls, throughRB, throughQuiet, throughRounds)
	bpftrace, dir, bin, ok := tracedSetup(t, s)
	if !ok {
		return
	}
	tick := clockTick()

	floor := &throughWay{Name: "count-only bpftrace (floor)", Kind: kindFloor,
		Script: []byte(fmt.Sprintf("uprobe:\"%s\":f { @c = count(); }\nuretprobe:\"%s\":f { @r = count(); }\n", bin, bin))}
	ways := []*throughWay{floor}
	for _, m := range []messages.Mode{messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
		script, err := tracer.Script(tracer.ScriptSpec{
			Type: messages.BPF, Process: bin, Functions: []string{"f"}, Lasting: 600 * time.Second, Mode: m,
		})
		hand := &throughWay{Name: fmt.Sprintf("bpftrace, mode %s, stdout to a file", m), Kind: kindByHand, Mode: m, Script: script}
		if err != nil {
			hand.Err = err.Error()
		}
		ways = append(ways, hand)
		for _, engine := range throughEngines {
			name := "the endpoint, mode " + string(m)
			if engine != "" {
				name += ", engine " + engine
			}
			ways = append(ways, &throughWay{Name: name, Kind: kindEndpoint, Mode: m, Engine: engine, Base: hand, Script: script, Err: hand.Err})
		}
	}
	for i, w := range ways {
		w.ByRnd = map[int]throughRun{}
		w.Path = filepath.Join(dir, fmt.Sprintf("way%d.bt", i))
		if err := os.WriteFile(w.Path, w.Script, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	load0 := loadAvg()
	defer func() { s.note("Load average (1, 5, 15 min) before the runs: %s; after: %s.", load0, loadAvg()) }()
	recv := startPlatformProc(t, false)
	e := startEndpoint(t, env, endpointOptions{PlatformURL: recv.URL(), BPFPath: bpftrace})
	id := e.putTemplate(bin, []string{"f"})

	for rnd := 0; rnd < throughRounds; rnd++ {
		for _, w := range ways {
			if w.Err != "" {
				continue
			}
			var r throughRun
			var err error
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			switch w.Kind {
			case kindFloor, kindByHand:
				r, err = runToFile(ctx, bpftrace, w, bin, filepath.Join(dir, "out.ndjson"))
			case kindEndpoint:
				r, err = runThroughEndpoint(ctx, e, recv, w, id, bin, tick)
			}
			cancel()
			if err != nil {
				t.Errorf("%s, round %d: %v", w.Name, rnd+1, err)
				w.Err = err.Error()
				continue
			}
			w.ByRnd[rnd] = r
			t.Logf("%s round %d: %s, %d lines, %d lost, endpoint CPU %s, receiver CPU %s %s",
				w.Name, rnd+1, fmtDur(r.Took), r.Lines, r.Lost, fmtDur(r.EndpointCPU), fmtDur(r.ReceiverCPU), r.Finish)
		}
	}
	reportThrough(s, ways, floor)
}

// reportThrough adds the section's rows, table and notes.
func reportThrough(s *section, ways []*throughWay, floor *throughWay) {
	tb := "| way | traced program run time | x floor | x bpftrace to a file | endpoint CPU per run | receiver CPU per run | " +
		"JSON bytes per run | lines per run | lost events per run |\n|---|---|---|---|---|---|---|---|---|\n"
	sys := "Endpoint process per MB of output it read (from before the run until its output was read and delivered, the tracer " +
		"still alive; /proc/PID/io syscr and syscw count read-like and write-like syscalls, context switches are summed over " +
		"/proc/PID/task/*/status), and its CPU per GB delivered:\n\n" +
		"| way | read syscalls / MB | write syscalls / MB | context switches / MB | endpoint CPU-s / GB | receiver CPU-s / GB |\n|---|---|---|---|---|---|\n"
	for _, w := range ways {
		if len(w.ByRnd) == 0 {
			r := row{Name: w.Name, Value: "not available", Ratio: math.NaN()}
			if w.Kind == kindEndpoint {
				r.Target = fmt.Sprintf("≤ %.2fx", throughTarget)
			}
			s.addRow(r)
			s.note("%s: not available: %s", w.Name, w.Err)
			continue
		}
		took := medianOf(w, func(r throughRun) time.Duration { return r.Took })
		xFloor := roundRatioOf(w, floor)
		r := row{Name: w.Name, Value: fmtDur(took), Baseline: fmtDur(medianOf(floor, func(r throughRun) time.Duration { return r.Took })) + " (floor)", Ratio: xFloor}
		xFile := math.NaN()
		switch w.Kind {
		case kindFloor:
			r.Baseline, r.Ratio = "", math.NaN()
		case kindByHand:
			xFile = 1
		case kindEndpoint:
			xFile = roundRatioOf(w, w.Base)
			r.Baseline = fmtDur(medianOf(w.Base, func(r throughRun) time.Duration { return r.Took })) + " (bpftrace to a file)"
			r.Ratio = xFile
			r.Target = fmt.Sprintf("≤ %.2fx", throughTarget)
			r.Met = atMost(xFile, throughTarget)
		}
		s.addRow(r)
		epCPU, recvCPU := "", ""
		if w.Kind == kindEndpoint {
			epCPU = fmtDur(medianOf(w, func(r throughRun) time.Duration { return r.EndpointCPU }))
			recvCPU = fmtDur(medianOf(w, func(r throughRun) time.Duration { return r.ReceiverCPU }))
		}
		lost := []string{}
		lines := []string{}
		for rnd := 0; rnd < throughRounds; rnd++ {
			if x, ok := w.ByRnd[rnd]; ok {
				lost = append(lost, fmt.Sprint(x.Lost))
				lines = append(lines, fmt.Sprint(x.Lines))
			}
		}
		bytesPer := medianOf(w, func(r throughRun) time.Duration { return time.Duration(r.Bytes) })
		tb += fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w.Name, fmtDur(took), fmtRatio(xFloor), fmtRatio(xFile),
			epCPU, recvCPU, fmtMB(int64(bytesPer)), strings.Join(lines, ", "), strings.Join(lost, ", "))
		if w.Kind == kindEndpoint {
			var rd, wr, cs, cpuGB, rcpuGB []float64
			for _, x := range w.ByRnd {
				if mb := float64(x.SysBytes) / 1e6; mb > 0 {
					rd, wr, cs = append(rd, float64(x.Sys.SysR)/mb), append(wr, float64(x.Sys.SysW)/mb), append(cs, float64(x.Sys.CtxSw)/mb)
				}
				if gb := float64(x.Bytes) / 1e9; gb > 0 {
					cpuGB, rcpuGB = append(cpuGB, x.EndpointCPU.Seconds()/gb), append(rcpuGB, x.ReceiverCPU.Seconds()/gb)
				}
			}
			if medianOf(w, func(r throughRun) time.Duration { return time.Duration(r.Bytes) }) < 1e6 {
				sys += fmt.Sprintf("| %s | (under 1 MB of output: not meaningful per MB) | | | | |\n", w.Name)
			} else {
				sys += fmt.Sprintf("| %s | %.0f | %.0f | %.0f | %.1f | %.1f |\n", w.Name, medianFloat(rd), medianFloat(wr), medianFloat(cs),
					medianFloat(cpuGB), medianFloat(rcpuGB))
			}
		}
		s.note("%s: run times %s.", w.Name, fmtDurs(runsOf(w)))
		if w.Kind == kindEndpoint && w.Base != nil {
			for rnd := 0; rnd < throughRounds; rnd++ {
				x, ok := w.ByRnd[rnd]
				b, bok := w.Base.ByRnd[rnd]
				if ok && bok && x.Lines+x.Lost < b.Lines+b.Lost {
					s.note("**%s, round %d delivered fewer lines than bpftrace printed by hand** (%d + %d lost against %d + %d lost) %s.",
						w.Name, rnd+1, x.Lines, x.Lost, b.Lines, b.Lost, x.Finish)
				}
			}
		}
	}
	s.Extra = append(s.Extra, tb, sys)
	s.note("Lost events are what bpftrace reported dropped (\"Lost N events\": its perf ring buffer, %s pages per CPU, "+
		"was full because bpftrace did not read it fast enough); by hand they are counted in the file, through the endpoint "+
		"they are the finished message's lostEvents. Lost events shorten a run (bpftrace formats fewer lines), so compare "+
		"ratios together with the lines delivered.", throughRB)
	s.note("Mode summary prints nothing while the program runs (one line per function at the end), so its ratio shows the " +
		"endpoint's idle cost; its JSON bytes are the END output.")
}

// runsOf lists w's run times in round order.
func runsOf(w *throughWay) []time.Duration {
	var ds []time.Duration
	for rnd := 0; rnd < throughRounds; rnd++ {
		if r, ok := w.ByRnd[rnd]; ok {
			ds = append(ds, r.Took)
		}
	}
	return ds
}

// medianOf is the median of f over w's runs.
func medianOf(w *throughWay, f func(throughRun) time.Duration) time.Duration {
	var ds []time.Duration
	for _, r := range w.ByRnd {
		ds = append(ds, f(r))
	}
	return median(ds)
}

// roundRatioOf is the median over rounds of w's run time over base's in
// the same round.
func roundRatioOf(w, base *throughWay) float64 {
	var rs []float64
	for rnd, r := range w.ByRnd {
		if b, ok := base.ByRnd[rnd]; ok && b.Took > 0 {
			rs = append(rs, float64(r.Took)/float64(b.Took))
		}
	}
	return medianFloat(rs)
}

// runToFile runs the traced program under bpftrace with w's script, stdout
// to the file out: it waits until bpftrace has attached every probe, runs
// the program, waits until the file has been quiet for throughQuiet, stops
// bpftrace with SIGINT and reads what the file holds.
func runToFile(ctx context.Context, bpftrace string, w *throughWay, bin, out string) (throughRun, error) {
	var res throughRun
	f, err := os.Create(out)
	if err != nil {
		return res, err
	}
	defer os.Remove(out)
	defer f.Close()
	cmd := exec.Command(bpftrace, w.Path)
	cmd.Env = append(os.Environ(), "BPFTRACE_PERF_RB_PAGES="+throughRB)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting bpftrace: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if ps := cmd.ProcessState; ps != nil {
				res.TracerCPU = ps.UserTime() + ps.SystemTime()
			}
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("bpftrace did not stop at SIGINT")
		}
	}
	defer stop()
	if err := waitPerfFDs(ctx, cmd.Process.Pid, onlineCPUs()+scriptProbes(w.Script)); err != nil {
		return res, fmt.Errorf("%w; bpftrace stderr: %s", err, stderr.String())
	}
	if res.Took, err = runTraced(bin); err != nil {
		return res, err
	}
	if w.Kind != kindFloor {
		size := func() int64 {
			fi, err := f.Stat()
			if err != nil {
				return -1
			}
			return fi.Size()
		}
		if err := waitQuiet(ctx, size); err != nil {
			return res, err
		}
	}
	if err := stop(); err != nil && !isSignalExit(err) {
		return res, fmt.Errorf("bpftrace: %w: %s", err, stderr.String())
	}
	if _, err := f.Seek(0, 0); err != nil {
		return res, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("{")) {
			res.Lines++
			res.Bytes += int64(len(line)) + 1
		} else if n, ok := lostCount(line); ok {
			res.Lost += n
		}
	}
	return res, sc.Err()
}

// isSignalExit reports whether err is an exit by a signal or with a code
// that bpftrace gives when interrupted.
func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && (ee.ExitCode() == -1 || ee.ExitCode() == 0)
}

// waitQuiet waits until size has not changed for throughQuiet.
func waitQuiet(ctx context.Context, size func() int64) error {
	last, since := size(), time.Now()
	for time.Since(since) < throughQuiet {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tracer's output did not become quiet: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if n := size(); n != last {
			last, since = n, time.Now()
		}
	}
	return nil
}

// runThroughEndpoint starts the trace through the endpoint, waits until the
// tracer has attached, runs the program, waits until the output is quiet,
// kills the trace and waits for the receiver's finished message.
func runThroughEndpoint(ctx context.Context, e *endpoint, recv receiver, w *throughWay, id int64, bin string, tick time.Duration) (throughRun, error) {
	var res throughRun
	before := perfEventFDs(e.PID())
	st, _, err := e.startWith(id, 600, string(w.Mode), w.Engine)
	if err != nil {
		return res, err
	}
	defer recv.Remove(st.FilePath)
	killed := false
	defer func() {
		if !killed {
			_ = e.kill(st.FilePath)
		}
	}()
	// Attached: bpftrace's process holds its perf events; an engine in
	// the endpoint adds one perf event per uprobe and uretprobe to the
	// endpoint's own.
	if w.inProcess() {
		if err := waitPerfFDs(ctx, e.PID(), before+strings.Count(string(w.Script), "probe:\"")); err != nil {
			return res, err
		}
	} else {
		var pid int
		for pid == 0 {
			ri, err := e.running(st.FilePath)
			if err != nil {
				return res, err
			}
			if pid = ri.PID; pid == 0 {
				select {
				case <-ctx.Done():
					return res, fmt.Errorf("the tracer did not start: %w (state %s)", ctx.Err(), ri.State)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		if err := waitPerfFDs(ctx, pid, onlineCPUs()+scriptProbes(w.Script)); err != nil {
			return res, err
		}
	}
	e0, r0 := readCounters(e.PID(), tick), readCounters(recv.PID(), tick)
	if res.Took, err = runTraced(bin); err != nil {
		return res, err
	}
	var read int64
	size := func() int64 {
		ri, err := e.running(st.FilePath)
		if err != nil {
			return -1
		}
		read = ri.BytesRead
		return ri.BytesRead
	}
	if err := waitQuiet(ctx, size); err != nil {
		return res, err
	}
	res.Sys, res.SysBytes = readCounters(e.PID(), tick).sub(e0), read
	killed = true
	if err := e.kill(st.FilePath); err != nil {
		return res, err
	}
	fin, err := recv.WaitFinished(ctx, st.FilePath)
	if err != nil {
		return res, err
	}
	e1, r1 := readCounters(e.PID(), tick), readCounters(recv.PID(), tick)
	res.EndpointCPU, res.ReceiverCPU = e1.CPU-e0.CPU, r1.CPU-r0.CPU
	res.Bytes, res.Lost = recv.OutSize(st.FilePath), fin.LostEvents
	res.Finish = fmt.Sprintf("(finished: %s, code %d)", fin.Reason, fin.Code)
	if res.Bytes != fin.Bytes {
		return res, fmt.Errorf("the receiver holds %d bytes, the finished message says %d", res.Bytes, fin.Bytes)
	}
	if res.Lines, err = recv.Lines(st.FilePath); err != nil {
		return res, err
	}
	return res, nil
}

// fmtMB prints bytes in MB (10^6).
func fmtMB(b int64) string {
	if b < 1e5 {
		return fmt.Sprintf("%d B", b)
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}
