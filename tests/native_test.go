package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// nativeTarget is the C program the native engine's end-to-end tests
// trace:
//
//	ntarget N [COMM [wait]]
//
// It names itself COMM (when given and not "-"), waits for a line on stdin
// when "wait" is given, calls lambda_f(i) for i = 0..N-1 (it returns i+1),
// prints the sum and exits 0.
const nativeTarget = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
static volatile long sink;
__attribute__((noinline)) long lambda_f(long x) { sink += x; return x + 1; }
int main(int argc, char **argv) {
	long n = atol(argv[1]), acc = 0;
	if (argc > 2 && strcmp(argv[2], "-") != 0)
		prctl(PR_SET_NAME, argv[2], 0, 0, 0);
	if (argc > 3 && strcmp(argv[3], "wait") == 0) {
		char line[16];
		if (!fgets(line, sizeof line, stdin))
			return 2;
	}
	for (long i = 0; i < n; i++)
		acc += lambda_f(i);
	printf("%ld\n", acc);
	return 0;
}
`

// nativeLine is one delivered line of any mode.
type nativeLine struct {
	Probe    *string `json:"probe"`
	Return   *string `json:"return"`
	Function *string `json:"function"`
	UID      *int64  `json:"uid"`
	PID      int     `json:"pid"`
	TID      int     `json:"tid"`
	CPU      *int    `json:"cpu"`
	Time     *uint64 `json:"time"`
	Process  string  `json:"process"`
	Retval   *int64  `json:"retval"`
	Duration *int64  `json:"duration"`
	Calls    *int64  `json:"calls"`
	Hist     []struct {
		LeNs  uint64 `json:"le_ns"`
		Count int64  `json:"count"`
	} `json:"hist"`
}

// nativeLines decodes every delivered line: each must be one JSON object.
func nativeLines(t *testing.T, data []byte) []nativeLine {
	t.Helper()
	var out []nativeLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l nativeLine
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&l); err != nil {
			t.Fatalf("delivered line is not one JSON object of the native engine's shapes: %q: %v", sc.Bytes(), err)
		}
		out = append(out, l)
	}
	return out
}

// startNative starts template id with the native engine in mode (engine
// "" leaves it to lambda.engine) and waits until its probes are attached:
// the trace is running once the engine has attached every probe.
func startNative(t *testing.T, e *endpoint, id int64, lasting int, mode, engine string) started {
	t.Helper()
	body := fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":%d,"mode":%q`, id, lasting, mode)
	if engine != "" {
		body += fmt.Sprintf(`,"engine":%q`, engine)
	}
	var s started
	e.mustJSON("POST", "/trace/start", body+"}", http.StatusOK, &s)
	eventually(t, 60*time.Second, "the native trace to attach", func() bool {
		var ri struct {
			State  string `json:"state"`
			Engine string `json:"engine"`
			PID    int    `json:"pid"`
		}
		st, b, _ := e.do("GET", "/trace/running?path="+s.FilePath, "", nil)
		if st != http.StatusOK || json.Unmarshal(b, &ri) != nil {
			t.Fatalf("trace %s not running: %d %s", s.FilePath, st, b)
		}
		if ri.Engine != "native" || ri.PID != 0 {
			t.Fatalf("RunningInfo of a native trace: engine %q, pid %d; want native and no pid", ri.Engine, ri.PID)
		}
		return ri.State == "running"
	})
	return s
}

// kill kills the trace at path and waits for its finished message.
func killAndWait(t *testing.T, e *endpoint, p *platformtest.Platform, path string) platformtest.TraceRecord {
	t.Helper()
	e.mustJSON("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, path), http.StatusOK, nil)
	return waitFinished(t, p, path, 60*time.Second)
}

// bpfFDs lists the open file descriptors of process pid that are BPF
// objects (maps, programs, links) or perf events (the uprobes).
func bpfFDs(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		l, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err == nil && (strings.Contains(l, "bpf") || strings.Contains(l, "perf_event")) {
			out = append(out, ent.Name()+" -> "+l)
		}
	}
	return out
}

// TestNativeModes traces a C program and a Go program built by the test
// with the native engine in every mode, through the endpoint with
// lambda.engine = "native" (the start names no engine): exact counts, the
// fields of each mode, nothing lost, and the Go program exits 0 with its
// checksum in every mode (returns are probed at its RET instructions).
func TestNativeModes(t *testing.T) {
	requireRoot(t)
	cBin := buildC(t, "ntarget", nativeTarget)
	goBin := buildGoTarget(t, t.TempDir())
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), Extra: `engine = "native"`})
	const cCalls = 50000
	cID := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"traceType":"BPF"}`, cBin))
	goID := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["main.work"],"traceType":"BPF"}`, goBin))
	for _, tc := range []struct {
		name   string
		id     int64
		bin    string
		fn     string
		args   []string
		calls  int64
		stdout string
	}{
		{"c", cID, cBin, "lambda_f", []string{strconv.Itoa(cCalls)}, cCalls, fmt.Sprintln(cCalls * (cCalls + 1) / 2)},
		{"go", goID, goBin, "main.work", nil, goRounds * goCalls, fmt.Sprintf("checksum %d\n", goChecksum())},
	} {
		for _, mode := range []string{"events", "calls", "summary"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				s := startNative(t, e, tc.id, 120, mode, "")
				cmd := exec.Command(tc.bin, tc.args...)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("the traced program failed: %v\n%s", err, out)
				}
				if string(out) != tc.stdout {
					t.Errorf("the traced program printed %q, want %q", out, tc.stdout)
				}
				pid := cmd.Process.Pid
				rec := killAndWait(t, e, p, s.FilePath)
				if f := rec.Finished; f.Reason != "killed" || f.Code != 0 || f.LostEvents != 0 {
					t.Errorf("finished %+v, want reason killed, code 0, nothing lost", f)
				}
				up, uret := "uprobe:"+tc.bin+":"+tc.fn, "uretprobe:"+tc.bin+":"+tc.fn
				var entries, returns, calls, summaries int64
				seen := map[int64]int{} // retval -> times (C: each of 1..N once)
				for _, l := range nativeLines(t, rec.Data) {
					if l.Function == nil && l.PID != pid {
						t.Fatalf("line of pid %d, want %d: %+v", l.PID, pid, l)
					}
					switch {
					case l.Probe != nil && *l.Probe == up:
						entries++
					case l.Return != nil && *l.Return == uret && l.Retval != nil:
						returns++
						seen[*l.Retval]++
					case l.Function != nil && *l.Function == up && l.Calls != nil:
						summaries++
						var sum int64
						for _, b := range l.Hist {
							sum += b.Count
						}
						if *l.Calls != tc.calls || sum != tc.calls {
							t.Errorf("summary: calls %d, histogram sum %d, want %d", *l.Calls, sum, tc.calls)
						}
					case l.Function != nil && *l.Function == up && l.Duration != nil && l.Retval != nil:
						calls++
						seen[*l.Retval]++
						if *l.Duration <= 0 {
							t.Fatalf("call of non-positive duration: %+v", l)
						}
					default:
						t.Fatalf("unexpected line %+v", l)
					}
				}
				want := map[string][4]int64{
					"events": {tc.calls, tc.calls, 0, 0}, "calls": {0, 0, tc.calls, 0}, "summary": {0, 0, 0, 1},
				}[mode]
				if got := [4]int64{entries, returns, calls, summaries}; got != want {
					t.Errorf("entries, returns, calls, summaries = %v, want %v", got, want)
				}
				if tc.name == "c" && mode != "summary" {
					for v := int64(1); v <= tc.calls; v++ {
						if seen[v] != 1 {
							t.Fatalf("retval %d seen %d times, want once", v, seen[v])
						}
					}
				}
			})
		}
	}
}

// TestNativeLostEventsExact: a 4 KiB ring buffer (lambda.native-ring-bytes)
// forces the native engine to drop events; the finished message's
// lostEvents, counted in the kernel, is exactly what was not delivered, and
// lambda_tracer_lost_events_total counts it. No canary call is needed: the
// counter is read when the trace ends.
func TestNativeLostEventsExact(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, "ntarget", nativeTarget)
	const calls = 200000
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), Extra: "native-ring-bytes = 4096"})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"traceType":"BPF"}`, bin))
	s := startNative(t, e, id, 120, "events", "native")
	cmd := exec.Command(bin, strconv.Itoa(calls))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("traced program: %v\n%s", err, out)
	}
	rec := killAndWait(t, e, p, s.FilePath)
	var got int64
	for _, l := range nativeLines(t, rec.Data) {
		if l.PID == cmd.Process.Pid && (l.Probe != nil || l.Return != nil) {
			got++
		}
	}
	want := int64(2 * calls)
	if got+rec.Finished.LostEvents != want {
		t.Fatalf("delivered %d events + lostEvents %d = %d, want exactly %d", got, rec.Finished.LostEvents, got+rec.Finished.LostEvents, want)
	}
	if rec.Finished.LostEvents == 0 {
		t.Fatalf("nothing lost with a 4 KiB ring buffer and %d events: the test forces no loss", want)
	}
	if v, ok := metricValue(scrapeMetrics(t, e), "lambda_tracer_lost_events_total"); !ok || int64(v) != rec.Finished.LostEvents {
		t.Errorf("lambda_tracer_lost_events_total = %v (found %v), want %d", v, ok, rec.Finished.LostEvents)
	}
	t.Logf("%d events delivered, %d lost", got, rec.Finished.LostEvents)
}

// TestNativeQuotedComm: a process whose name holds a quote and a backslash
// yields valid JSON lines with its name intact (bpftrace cannot escape it).
func TestNativeQuotedComm(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, "ntarget", nativeTarget)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"traceType":"BPF"}`, bin))
	s := startNative(t, e, id, 120, "events", "native")
	const comm = `a"b\c`
	if out, err := exec.Command(bin, "10", comm).CombinedOutput(); err != nil {
		t.Fatalf("traced program: %v\n%s", err, out)
	}
	rec := killAndWait(t, e, p, s.FilePath)
	lines := nativeLines(t, rec.Data) // every line valid JSON
	if len(lines) != 20 {
		t.Fatalf("%d lines, want 20:\n%s", len(lines), rec.Data)
	}
	for _, l := range lines {
		if l.Process != comm {
			t.Fatalf("process %q, want %q", l.Process, comm)
		}
	}
}

// TestNativePIDFilter: the template option -p PID becomes the engine's
// in-kernel filter: only that process's calls are delivered.
func TestNativePIDFilter(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, "ntarget", nativeTarget)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	traced := exec.Command(bin, "300", "-", "wait")
	stdin, err := traced.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var tracedOut bytes.Buffer
	traced.Stdout = &tracedOut
	if err := traced.Start(); err != nil {
		t.Fatal(err)
	}
	defer traced.Process.Kill()
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"options":["-p",%q],"traceType":"BPF"}`,
		bin, strconv.Itoa(traced.Process.Pid)))
	s := startNative(t, e, id, 120, "calls", "native")
	other := exec.Command(bin, "200")
	if out, err := other.CombinedOutput(); err != nil {
		t.Fatalf("untraced program: %v\n%s", err, out)
	}
	io.WriteString(stdin, "go\n")
	stdin.Close()
	if err := traced.Wait(); err != nil {
		t.Fatalf("traced program: %v", err)
	}
	rec := killAndWait(t, e, p, s.FilePath)
	n := 0
	for _, l := range nativeLines(t, rec.Data) {
		if l.PID != traced.Process.Pid {
			t.Fatalf("a line of pid %d, want only %d: %+v", l.PID, traced.Process.Pid, l)
		}
		n++
	}
	if n != 300 {
		t.Errorf("%d call lines of the filtered pid, want 300", n)
	}
}

// TestNativeDetaches: a native trace that is killed, one that reaches its
// lasting, and one stopped by the endpoint's shutdown release every probe,
// map and program: the endpoint holds no BPF or perf event file
// descriptor once the trace is delivered (and holds some while it runs,
// so the check sees them); a summary stopped by the shutdown is delivered.
func TestNativeDetaches(t *testing.T) {
	requireRoot(t)
	bin := buildC(t, "ntarget", nativeTarget)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"traceType":"BPF"}`, bin))
	noFDs := func(what string) {
		t.Helper()
		// Delivered means the engine has ended: nothing may stay open.
		if fds := bpfFDs(t, e.PID()); len(fds) != 0 {
			t.Errorf("%s: the endpoint still holds %v", what, fds)
		}
	}
	noFDs("before any trace")

	s := startNative(t, e, id, 120, "events", "native")
	if fds := bpfFDs(t, e.PID()); len(fds) < 3 {
		t.Fatalf("a running native trace holds only %v: the check cannot see its probes", fds)
	}
	if rec := killAndWait(t, e, p, s.FilePath); rec.Finished.Reason != "killed" {
		t.Errorf("killed trace finished %+v", rec.Finished)
	}
	noFDs("after a kill")

	s = startNative(t, e, id, 2, "calls", "native")
	if out, err := exec.Command(bin, "5").CombinedOutput(); err != nil {
		t.Fatalf("traced program: %v\n%s", err, out)
	}
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if rec.Finished.Reason != "completed" || rec.Finished.Code != 0 || len(nativeLines(t, rec.Data)) != 5 {
		t.Errorf("trace past its lasting finished %+v with %q, want completed, code 0 and 5 calls", rec.Finished, rec.Data)
	}
	noFDs("after the lasting")

	s = startNative(t, e, id, 120, "summary", "native")
	if out, err := exec.Command(bin, "7").CombinedOutput(); err != nil {
		t.Fatalf("traced program: %v\n%s", err, out)
	}
	if code := e.Stop(); code != 0 {
		t.Errorf("endpoint exit code %d after SIGTERM, want 0", code)
	}
	rec = p.Trace(s.FilePath)
	if rec.Finished == nil || rec.Finished.Reason != "shutdown" {
		t.Fatalf("trace stopped by the shutdown: finished %+v", rec.Finished)
	}
	if l := nativeLines(t, rec.Data); len(l) != 1 || l[0].Calls == nil || *l[0].Calls != 7 {
		t.Errorf("summary after the shutdown: %q, want one line of 7 calls", rec.Data)
	}
}

// TestNativeRefusals: what the native engine cannot run is refused at
// start with 400 naming the field, and nothing starts: a STAP template, a
// bpftrace option other than -p, an environment variable, an unknown
// engine.
func TestNativeRefusals(t *testing.T) {
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	stap := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"STAP"}`)
	opt := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"options":["-p","1","-B","line"],"traceType":"BPF"}`)
	env := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"environment":["BPFTRACE_STRLEN"],"value":["64"],"traceType":"BPF"}`)
	plain := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF"}`)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"stap", fmt.Sprintf(`{"traceT":"STAP","traceId":%d,"lasting":10,"engine":"native"}`, stap),
			`engine: "native" runs BPF templates only`},
		{"option", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10,"engine":"native"}`, opt),
			`options[2]: "-B" is a bpftrace option; the native engine takes only -p PID`},
		{"environment", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10,"engine":"native"}`, env),
			`environment[0]: "BPFTRACE_STRLEN" is a bpftrace variable; the native engine takes no environment`},
		{"unknown engine", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10,"engine":"dtrace"}`, plain),
			`engine: "dtrace" is not one of bpftrace, native`},
		{"engine case", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10,"engine":"Native"}`, plain),
			`engine: "Native" is not one of bpftrace, native`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := e.do("POST", "/trace/start", tc.body, nil)
			var res struct {
				Error string `json:"error"`
			}
			json.Unmarshal(body, &res)
			if st != http.StatusBadRequest || !strings.Contains(res.Error, tc.want) {
				t.Errorf("status %d %s, want 400 containing %q", st, body, tc.want)
			}
		})
	}
	var all []runningInfo
	e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
	if len(all) != 0 {
		t.Fatalf("refused starts left traces running: %+v", all)
	}
}
