//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
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
	overheadCalls = 100000 // calls of f per run of the traced program
	overheadReps  = 3      // runs per way of tracing; the median counts
)

// overheadWay is one way of running the traced program.
type overheadWay struct {
	Name   string
	Script []byte // nil: untraced
	Target float64
	Err    string // why this way cannot run ("not available")
	Runs   []time.Duration
	Lost   string // bpftrace's lost-event reports, if any
	Output int64  // bytes the tracer printed in the last run
}

// benchOverhead measures how much slower testdata/traced.c runs under the
// bpftrace script of each trace mode than under a count-only script.
func benchOverhead(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("`testdata/traced.c` (gcc -O2) calls a `noinline` function `f` %d times; "+
		"its wall-clock run time is measured untraced, under a count-only bpftrace script "+
		"(`uprobe:BIN:f { @c = count(); } uretprobe:BIN:f { @r = count(); }`, the floor: the cost of the "+
		"probes themselves) and under the script `tracer.Script` generates for each trace mode. bpftrace "+
		"is started, the run begins 1 s after it printed \"Attaching\", and it is stopped after the run; "+
		"its stdout is read as fast as possible, as the endpoint does. %d rounds, the ways interleaved in each round; "+
		"medians. Ratios are to the floor.", overheadCalls, overheadReps)
	if os.Geteuid() != 0 {
		missing(t, s, "needs root to attach uprobes")
		return
	}
	bpftrace, err := exec.LookPath("bpftrace")
	if err != nil {
		missing(t, s, "bpftrace is not installed (apt-get install -y bpftrace)")
		return
	}
	dir := t.TempDir()
	bin, err := buildTraced(dir)
	if err != nil {
		missing(t, s, err.Error())
		return
	}

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
				var out int64
				var stderr string
				d, out, stderr, err = runUnderBpftrace(bpftrace, string(w.Script), bin)
				w.Output = out
				if lost := lostEvents(stderr); lost != "" {
					w.Lost = lost
				}
			}
			if err != nil {
				t.Errorf("%s, round %d: %v", w.Name, rep+1, err)
				w.Err = err.Error()
				continue
			}
			w.Runs = append(w.Runs, d)
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
		r := row{Name: w.Name, Value: fmtDur(m), Baseline: fmtDur(floor), Ratio: ratio(float64(m), float64(floor))}
		switch i {
		case 0: // untraced: no baseline
			r.Baseline, r.Ratio = "", math.NaN()
		case 1: // the floor, against the untraced run
			untraced := median(ways[0].Runs)
			r.Baseline, r.Ratio = fmtDur(untraced)+" (untraced)", ratio(float64(m), float64(untraced))
		}
		if w.Target > 0 {
			r.Target = fmt.Sprintf("≤ %.1fx", w.Target)
			r.Met = atMost(r.Ratio, w.Target)
		}
		s.addRow(r)
		runs := fmt.Sprintf("%s: runs %s", w.Name, fmtDurs(w.Runs))
		if w.Script != nil {
			runs += fmt.Sprintf("; the tracer printed %d bytes in the last run", w.Output)
		}
		if w.Lost != "" {
			runs += "; bpftrace reported lost events: " + w.Lost
		}
		s.note("%s", runs)
	}
	s.note("The floor row's ratio is to the untraced run: the uprobe and uretprobe traps themselves (kernel entries on every call and return) are what any tracing costs; the modes' ratios show what their scripts add on top.")
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

// runUnderBpftrace starts bpftrace with script, runs the program once it
// has attached (plus a second), stops bpftrace with SIGINT and returns the
// program's wall time, the bytes bpftrace printed and its stderr.
func runUnderBpftrace(bpftrace, script, bin string) (time.Duration, int64, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bpftrace, script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, "", fmt.Errorf("starting bpftrace: %w", err)
	}
	attached := make(chan struct{})
	var out int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := r.ReadString('\n')
			out += int64(len(line))
			if strings.HasPrefix(line, "Attaching") {
				close(attached)
				break
			}
			if err != nil {
				return
			}
		}
		n, _ := io.Copy(io.Discard, r)
		out += n
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-readDone
		_ = cmd.Wait()
	}
	select {
	case <-attached:
	case <-readDone:
		stop()
		return 0, 0, stderr.String(), fmt.Errorf("bpftrace ended before attaching: %s", stderr.String())
	case <-ctx.Done():
		stop()
		return 0, 0, stderr.String(), fmt.Errorf("bpftrace did not attach: %s", stderr.String())
	}
	time.Sleep(time.Second)
	d, err := runTraced(bin)
	stop()
	if err != nil {
		return 0, out, stderr.String(), err
	}
	return d, out, stderr.String(), nil
}

// lostEvents returns bpftrace's reports of lost events, if any.
func lostEvents(stderr string) string {
	var lost []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "Lost") {
			lost = append(lost, strings.TrimSpace(l))
		}
	}
	return strings.Join(lost, "; ")
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
