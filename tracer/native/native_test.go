package native

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// The test targets, built once by targets.
var (
	buildOnce          sync.Once
	buildErr           error
	noGCC              bool // buildErr is only that gcc is missing
	cTarget, goTarget  string
	buildDir           string
	targetsNeedRootMsg = "the native engine needs root to load BPF programs and attach uprobes"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// needRoot stops t when the engine cannot run here: a failure under
// CI=true, a loud skip otherwise.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal(targetsNeedRootMsg + " (CI=true)")
		}
		t.Skip("SKIPPING: " + targetsNeedRootMsg)
	}
}

// targets builds testdata/target.c with gcc -O2 and testdata/gotarget with
// go build, once, and returns their paths.
func targets(t *testing.T) (c, goBin string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "native-test-")
		if buildErr != nil {
			return
		}
		cTarget, goTarget = filepath.Join(buildDir, "target"), filepath.Join(buildDir, "gotarget")
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			buildErr, noGCC = fmt.Errorf("gcc is not installed: it builds the C target"), true
			return
		}
		if out, err := exec.Command(gcc, "-O2", "-o", cTarget, "testdata/target.c").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building testdata/target.c: %v\n%s", err, out)
			return
		}
		if out, err := exec.Command("go", "build", "-o", goTarget, "./testdata/gotarget").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building testdata/gotarget: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		// Only a missing gcc (outside CI) skips: a target that does not
		// build is a failure.
		if noGCC && os.Getenv("CI") != "true" {
			t.Skip("SKIPPING: " + buildErr.Error())
		}
		t.Fatal(buildErr)
	}
	return cTarget, goTarget
}

// traced is what one traced run produced.
type traced struct {
	Lines  []map[string]any
	Raw    []string
	Result Result
	Stdout string // the target's
	PID    int    // the target's
}

// traceRun starts a trace of spec, runs the target (args) to its end,
// stops the trace and returns its output; every line must be valid JSON.
func traceRun(t *testing.T, spec Spec, args ...string) traced {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	outDone := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(tr.Output())
		outDone <- b
	}()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	runErr := cmd.Run()
	tr.Stop()
	out := <-outDone
	res, err := tr.Wait()
	if err != nil {
		t.Errorf("trace ended with: %v", err)
	}
	if runErr != nil {
		t.Fatalf("target %v: %v", args, runErr)
	}
	got := traced{Result: res, Stdout: stdout.String(), PID: cmd.Process.Pid}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("invalid JSON line %q: %v", sc.Text(), err)
		}
		got.Lines = append(got.Lines, m)
		got.Raw = append(got.Raw, sc.Text())
	}
	if int64(len(out)) != int64(res.Bytes) {
		t.Errorf("read %d bytes of output, the trace reports %d", len(out), res.Bytes)
	}
	return got
}

// count returns how many lines have key == value.
func (tr traced) count(key, value string) int {
	n := 0
	for _, m := range tr.Lines {
		if s, _ := m[key].(string); s == value {
			n++
		}
	}
	return n
}

func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("line %v: %s is not a number", m, key)
	}
	n, err := v.Int64()
	if err != nil {
		t.Fatalf("line %v: %s: %v", m, key, err)
	}
	return n
}

// keys returns the keys of the JSON object line in order.
func keys(t *testing.T, line string) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k.(string))
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

const (
	cCalls  = 2000 // calls of f by the C target
	cRec    = 40   // rec(cRec) by the C target: cRec+1 nested calls
	goCalls = 2000 // calls of work by the Go target
	goDeep  = 20   // goroutines calling deep(200) in the Go target
)

// TestModes runs every mode on the C and the Go target and checks the
// counts exactly, the fields and their order, and that the target ran
// correctly.
func TestModes(t *testing.T) {
	needRoot(t)
	c, goBin := targets(t)
	entryKeys := "probe uid pid tid cpu time process"
	returnKeys := "return uid pid tid cpu time process retval"
	callKeys := "function uid pid tid cpu time process duration retval"
	for _, tc := range []struct {
		name   string
		bin    string
		funcs  []string
		args   []string
		stdout string
		counts map[string]int // function -> calls
		comm   string
	}{
		{"c", c, []string{"f", "rec"}, []string{strconv.Itoa(cCalls), "-"},
			fmt.Sprintln(cCalls*(cCalls+1)/2 + cRec), map[string]int{"f": cCalls, "rec": cRec + 1}, "target"},
		{"go", goBin, []string{"main.work", "main.deep"}, []string{strconv.Itoa(goCalls), strconv.Itoa(goDeep)},
			fmt.Sprintln(goCalls*(goCalls+1)/2, goDeep*200), map[string]int{"main.work": goCalls, "main.deep": goDeep * 201}, "gotarget"},
	} {
		for _, mode := range []messages.Mode{messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
			t.Run(tc.name+"/"+string(mode), func(t *testing.T) {
				got := traceRun(t, Spec{Process: tc.bin, Functions: tc.funcs, Mode: mode}, append([]string{tc.bin}, tc.args...)...)
				if got.Stdout != tc.stdout {
					t.Errorf("target printed %q, want %q", got.Stdout, tc.stdout)
				}
				if got.Result.LostEvents != 0 {
					t.Errorf("lost %d events", got.Result.LostEvents)
				}
				total := 0
				for fn, n := range tc.counts {
					total += n
					up, uret := "uprobe:"+tc.bin+":"+fn, "uretprobe:"+tc.bin+":"+fn
					switch mode {
					case messages.ModeEvents:
						if e, r := got.count("probe", up), got.count("return", uret); e != n || r != n {
							t.Errorf("%s: %d entry and %d return lines, want %d of each", fn, e, r, n)
						}
					case messages.ModeCalls:
						if k := got.count("function", up); k != n {
							t.Errorf("%s: %d call lines, want %d", fn, k, n)
						}
					case messages.ModeSummary:
						if k := got.count("function", up); k != 1 {
							t.Fatalf("%s: %d summary lines, want 1:\n%s", fn, k, strings.Join(got.Raw, "\n"))
						}
					}
				}
				lines := total
				if mode == messages.ModeEvents {
					lines *= 2
				}
				if mode == messages.ModeSummary {
					lines = len(tc.counts)
				}
				if len(got.Lines) != lines {
					t.Errorf("%d lines, want %d", len(got.Lines), lines)
				}
				retvals := map[int64]int{}
				recDur := map[int64]int64{} // rec(n) returns n
				for i, m := range got.Lines {
					ks := strings.Join(keys(t, got.Raw[i]), " ")
					switch {
					case mode == messages.ModeSummary:
						if ks != "function hist calls" {
							t.Fatalf("summary keys %q", ks)
						}
						fn := strings.TrimPrefix(m["function"].(string), "uprobe:"+tc.bin+":")
						var sum int64
						for _, b := range m["hist"].([]any) {
							sum += num(t, b.(map[string]any), "count")
						}
						if calls := num(t, m, "calls"); calls != int64(tc.counts[fn]) || sum != calls {
							t.Errorf("%s: calls %d, histogram sum %d, want %d", fn, calls, sum, tc.counts[fn])
						}
						continue
					case m["probe"] != nil:
						if ks != entryKeys {
							t.Fatalf("entry keys %q", ks)
						}
					case m["return"] != nil:
						if ks != returnKeys {
							t.Fatalf("return keys %q", ks)
						}
						if m["return"] == "uretprobe:"+tc.bin+":"+tc.funcs[0] {
							retvals[num(t, m, "retval")]++
						}
					default:
						if ks != callKeys {
							t.Fatalf("call keys %q", ks)
						}
						if m["function"] == "uprobe:"+tc.bin+":"+tc.funcs[0] {
							retvals[num(t, m, "retval")]++
						}
						if num(t, m, "duration") <= 0 {
							t.Errorf("duration not positive: %v", m)
						}
						if m["function"] == "uprobe:"+c+":rec" {
							recDur[num(t, m, "retval")] = num(t, m, "duration")
						}
					}
					if p := num(t, m, "pid"); p != int64(got.PID) {
						t.Fatalf("pid %d, want %d", p, got.PID)
					}
					if m["process"] != tc.comm {
						t.Fatalf("process %v, want %s", m["process"], tc.comm)
					}
					if num(t, m, "time") <= 0 {
						t.Fatalf("time not positive: %v", m)
					}
				}
				if mode == messages.ModeCalls && tc.name == "c" {
					// Each rec call encloses the next: its entry paired
					// with its own return, whether its frame was kept in
					// the thread's frame stack or, deeper, in the hash map.
					for n := int64(1); n <= cRec; n++ {
						if recDur[n] <= recDur[n-1] {
							t.Fatalf("rec(%d) took %d ns, not more than rec(%d) inside it (%d ns)", n, recDur[n], n-1, recDur[n-1])
						}
					}
				}
				if mode != messages.ModeSummary {
					// f(i) and work(i) return i+1: each of 1..N once.
					n := tc.counts[tc.funcs[0]]
					for v := int64(1); v <= int64(n); v++ {
						if retvals[v] != 1 {
							t.Fatalf("retval %d seen %d times, want once", v, retvals[v])
						}
					}
				}
			})
		}
	}
}
