//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

const (
	overheadCalls = 100000 // calls of f per run of the traced program
	overheadReps  = 5      // rounds; each runs every way once
)

// overheadWay is one way of running the traced program.
type overheadWay struct {
	Name   string
	Script []byte   // nil: untraced
	Env    []string // more environment for bpftrace
	Target float64
	Err    string // why this way cannot run ("not available")
	Runs   []time.Duration
	ByRep  map[int]time.Duration // Runs by round, for per-round ratios
	Traced []tracedRun           // what each run under bpftrace printed
}

// benchOverhead measures how much slower testdata/traced.c runs under the
// bpftrace script of each trace mode than under a count-only script.
func benchOverhead(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("`testdata/traced.c` (gcc -O2) calls a `noinline` function `f` %d times; "+
		"its wall-clock run time is measured untraced, under a count-only bpftrace script "+
		"(`uprobe:BIN:f { @c = count(); } uretprobe:BIN:f { @r = count(); }`, the floor: the cost of the "+
		"probes themselves) and under the script `tracer.Script` generates for each trace mode. bpftrace "+
		"is started, the run begins 1 s after it printed \"Attaching\", and it is stopped after the run; "+
		"its stdout is read as fast as possible, as the endpoint does, and it is stopped once its output has been quiet for 0.5 s. %d rounds, the ways interleaved in each round; "+
		"the value is the median run time, the ratio the median of the per-round ratios to the floor (runs of one round are "+
		"seconds apart, so a change in the machine's load affects both alike).", overheadCalls, overheadReps)
	bpftrace, dir, bin, ok := tracedSetup(t, s)
	if !ok {
		return
	}
	var err error

	ways := []*overheadWay{
		{Name: "untraced"},
		{Name: "floor: count only", Script: []byte(fmt.Sprintf(
			"uprobe:\"%s\":f { @c = count(); }\nuretprobe:\"%s\":f { @r = count(); }\n", bin, bin))},
	}
	for _, m := range []struct {
		mode   messages.Mode
		target float64
	}{{messages.ModeEvents, 2.6}, {messages.ModeCalls, 2.0}, {messages.ModeSummary, 1.3}} {
		w := &overheadWay{Name: "mode " + string(m.mode), Target: m.target}
		w.Script, err = tracer.Script(tracer.ScriptSpec{
			Type: messages.BPF, Process: bin, Functions: []string{"f"}, Lasting: time.Hour, Mode: m.mode,
		})
		if err != nil {
			w.Err = err.Error()
		}
		ways = append(ways, w)
		if m.mode == messages.ModeEvents {
			// The same script with a perf ring buffer large enough that
			// bpftrace loses no event: what printing every event costs.
			ways = append(ways, &overheadWay{Name: "mode events, lossless (BPFTRACE_PERF_RB_PAGES=8192)",
				Script: w.Script, Env: []string{"BPFTRACE_PERF_RB_PAGES=8192"}, Err: w.Err})
			// What the endpoint runs by default (lambda.bpf-perf-rb-pages):
			// 1 MiB per CPU.
			ways = append(ways, &overheadWay{Name: "mode events, the endpoint's default buffer (BPFTRACE_PERF_RB_PAGES=256)",
				Script: w.Script, Env: []string{"BPFTRACE_PERF_RB_PAGES=256"}, Err: w.Err})
		}
	}
	for i, w := range ways {
		if w.Script != nil {
			p := filepath.Join(dir, fmt.Sprintf("way%d.bt", i))
			if err := os.WriteFile(p, w.Script, 0o600); err != nil {
				t.Fatal(err)
			}
			w.Script = []byte(p)
		}
	}

	for rep := 0; rep < overheadReps; rep++ {
		for _, w := range ways {
			if w.Err != "" {
				continue
			}
			var d time.Duration
			if w.Script == nil {
				d, err = runTraced(bin)
			} else {
				var tr tracedRun
				tr, err = runUnderBpftrace(bpftrace, string(w.Script), bin, w.Env)
				d = tr.Took
				w.Traced = append(w.Traced, tr)
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

	floor := median(ways[1].Runs)
	for i, w := range ways {
		if w.Err != "" && len(w.Runs) == 0 {
			r := row{Name: w.Name, Value: "not available", Baseline: fmtDur(floor), Ratio: math.NaN()}
			if w.Target > 0 {
				r.Target = fmt.Sprintf("≤ %.1fx", w.Target)
			}
			s.addRow(r)
			s.note("%s: not available: %s", w.Name, w.Err)
			continue
		}
		m := median(w.Runs)
		r := row{Name: w.Name, Value: fmtDur(m), Baseline: fmtDur(floor), Ratio: roundRatio(w, ways[1])}
		switch i {
		case 0: // untraced: no baseline
			r.Baseline, r.Ratio = "", math.NaN()
		case 1: // the floor, against the untraced run
			r.Baseline, r.Ratio = fmtDur(median(ways[0].Runs))+" (untraced)", roundRatio(w, ways[0])
		}
		if w.Target > 0 {
			r.Target = fmt.Sprintf("≤ %.1fx", w.Target)
			r.Met = atMost(r.Ratio, w.Target)
		}
		s.addRow(r)
		runs := fmt.Sprintf("%s: runs %s", w.Name, fmtDurs(w.Runs))
		if len(w.Traced) > 0 {
			var lines, lost []string
			for _, tr := range w.Traced {
				lines = append(lines, fmt.Sprint(tr.Lines))
				lost = append(lost, fmt.Sprint(tr.Lost))
			}
			runs += fmt.Sprintf("; JSON lines printed per run: %s; events bpftrace reported lost: %s (last run: %s of output)",
				strings.Join(lines, ", "), strings.Join(lost, ", "), fmtMiB(w.Traced[len(w.Traced)-1].Bytes))
		}
		s.note("%s", runs)
	}
	for _, w := range ways {
		var lost int64
		for _, tr := range w.Traced {
			lost += tr.Lost
		}
		if lost > 0 {
			s.note("%s: bpftrace lost %d events over the runs (its perf ring buffer was full: the program made events "+
				"faster than bpftrace printed them), so this ratio understates what printing every event costs; the "+
				"lossless row shows that cost for the events mode.", w.Name, lost)
		}
	}
	s.note("The floor row's ratio is to the untraced run: the uprobe and uretprobe traps themselves (kernel entries on every call and return) are what any tracing costs; the modes' ratios show what their scripts add on top.")
}

// roundRatio is the median over rounds of w's run time divided by base's
// in the same round.
func roundRatio(w, base *overheadWay) float64 {
	var rs []float64
	for rep, d := range w.ByRep {
		if b, ok := base.ByRep[rep]; ok && b > 0 {
			rs = append(rs, float64(d)/float64(b))
		}
	}
	return medianFloat(rs)
}

// runTraced runs the traced program once and returns its wall time.
func runTraced(bin string) (time.Duration, error) {
	cmd := exec.Command(bin, fmt.Sprint(overheadCalls))
	cmd.Stdout = io.Discard
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("running %s: %w", bin, err)
	}
	return d, nil
}

// tracedRun is one run of the program under bpftrace.
type tracedRun struct {
	Took   time.Duration // the program's wall time
	Bytes  int64         // bytes bpftrace printed (after "Attaching")
	Lines  int64         // JSON lines among them
	Lost   int64         // events bpftrace reported lost ("Lost N events" on stdout)
	Stderr string
}

// runUnderBpftrace starts bpftrace with script, runs the program once it
// has attached (plus a second), stops bpftrace with SIGINT and returns what
// the run measured.
func runUnderBpftrace(bpftrace, script, bin string, env []string) (tracedRun, error) {
	var res tracedRun
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bpftrace, script)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting bpftrace: %w", err)
	}
	attached := make(chan struct{})
	readDone := make(chan struct{})
	var lastRead atomic.Int64 // unix nanoseconds of the last output
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(stdout, 64<<10)
		isAttached := false
		for {
			line, err := r.ReadSlice('\n')
			lastRead.Store(time.Now().UnixNano())
			switch {
			case !isAttached:
				if bytes.HasPrefix(line, []byte("Attaching")) {
					isAttached = true
					close(attached)
				}
			default:
				res.Bytes += int64(len(line))
				if bytes.HasPrefix(line, []byte("{")) {
					res.Lines++
				} else if n, ok := lostCount(line); ok {
					res.Lost += n
				}
			}
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
		}
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-readDone
		_ = cmd.Wait()
		res.Stderr = stderr.String()
	}
	select {
	case <-attached:
	case <-readDone:
		stop()
		return res, fmt.Errorf("bpftrace ended before attaching: %s", res.Stderr)
	case <-ctx.Done():
		stop()
		return res, fmt.Errorf("bpftrace did not attach: %s", res.Stderr)
	}
	time.Sleep(time.Second)
	res.Took, err = runTraced(bin)
	// Let bpftrace print what its ring buffer still holds: SIGINT ends it
	// without draining.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if time.Since(time.Unix(0, lastRead.Load())) > 500*time.Millisecond {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return res, err
}

// lostCount parses bpftrace's "Lost N events" line.
func lostCount(line []byte) (int64, bool) {
	var n int64
	if _, err := fmt.Sscanf(string(line), "Lost %d events", &n); err != nil {
		return 0, false
	}
	return n, true
}

// tracedSetup is what the sections that trace testdata/traced.c need:
// root, bpftrace's path, a scratch directory and the program built in it.
// When one is missing it reports the section as missing and ok is false.
func tracedSetup(t *testing.T, s *section) (bpftrace, dir, bin string, ok bool) {
	if os.Geteuid() != 0 {
		missing(t, s, "needs root to attach uprobes")
		return "", "", "", false
	}
	bpftrace, err := exec.LookPath("bpftrace")
	if err != nil {
		missing(t, s, "bpftrace is not installed (apt-get install -y bpftrace)")
		return "", "", "", false
	}
	dir = t.TempDir()
	if bin, err = buildTraced(dir); err != nil {
		missing(t, s, err.Error())
		return "", "", "", false
	}
	return bpftrace, dir, bin, true
}

// buildTraced compiles testdata/traced.c into dir with gcc -O2 and returns
// the binary's path.
func buildTraced(dir string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("gcc is not installed: it builds the traced program")
	}
	bin := filepath.Join(dir, "traced")
	if b, err := exec.Command(gcc, "-O2", "-o", bin, "testdata/traced.c").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building testdata/traced.c: %w\n%s", err, b)
	}
	return bin, nil
}
