package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// runningInfo is the part of RunningInfo the tests read.
type runningInfo struct {
	Process         string   `json:"process"`
	Functions       []string `json:"functions"`
	TraceType       string   `json:"traceType"`
	TraceNo         int64    `json:"traceNo"`
	Thread          int64    `json:"thread"`
	FilePath        string   `json:"filePath"`
	StartedAt       string   `json:"startedAt"`
	Lasting         int64    `json:"lasting"`
	State           string   `json:"state"`
	PID             int      `json:"pid"`
	BytesRead       int64    `json:"bytesRead"`
	BytesSubmitted  int64    `json:"bytesSubmitted"`
	ChunksSubmitted int64    `json:"chunksSubmitted"`
	LostEvents      int64    `json:"lostEvents"`
}

func (e *endpoint) running(path string) (runningInfo, int) {
	var ri runningInfo
	st, b, _ := e.do("GET", "/trace/running?path="+path, "", nil)
	if st == http.StatusOK {
		if err := json.Unmarshal(b, &ri); err != nil {
			e.t.Fatalf("decoding RunningInfo %s: %v", b, err)
		}
	}
	return ri, st
}

// busyBash runs short bash commands until ctx is done, so that bash's
// xmalloc and xfree fire.
func busyBash(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			exec.Command("/bin/bash", "-c", "for i in 1 2 3; do x=$i$i; done; echo $x >/dev/null").Run()
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// checkEvents parses the trace's JSON event lines and returns how many
// entry and return events it holds. bpftrace's own lines ("Attaching N
// probes...", blank lines) are not events.
func checkEvents(t *testing.T, data []byte) (entries, returns int) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var ev map[string]interface{}
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("event line is not JSON: %q: %v", line, err)
		}
		for _, k := range []string{"pid", "tid", "time", "uid", "cpu", "process"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("event %q lacks %q", line, k)
			}
		}
		switch {
		case ev["probe"] != nil:
			entries++
		case ev["return"] != nil:
			if _, ok := ev["retval"]; !ok {
				t.Fatalf("return event %q lacks retval", line)
			}
			returns++
		default:
			t.Fatalf("event %q is neither an entry nor a return", line)
		}
	}
	return entries, returns
}

// TestBPFEndToEnd is the platform's view of a real bpftrace trace of
// /bin/bash, on PostgreSQL.
func TestBPFEndToEnd(t *testing.T) {
	bt := requireBpftrace(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["postgres"], PlatformURL: p.URL(), BPFPath: bt})
	id := e.putTemplate(bashTemplate)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	busyBash(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()

	s := e.start("BPF", id, 3)
	if s.Thread <= 0 {
		t.Errorf("thread = %d", s.Thread)
	}
	ri, st := e.running(s.FilePath)
	if st != http.StatusOK || ri.FilePath != s.FilePath || ri.Thread != s.Thread || ri.TraceNo != id ||
		ri.Process != "/bin/bash" || len(ri.Functions) != 2 || ri.Lasting != 3 || ri.StartedAt == "" {
		t.Errorf("running info %d %+v", st, ri)
	}
	var all []runningInfo
	e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
	if len(all) != 1 || all[0].FilePath != s.FilePath {
		t.Errorf("running/all = %+v", all)
	}
	eventually(t, 20*time.Second, "the tracer's pid", func() bool { ri, _ = e.running(s.FilePath); return ri.PID > 0 })
	tracerPID := ri.PID

	rec := waitFinished(t, p, s.FilePath, 90*time.Second)
	f := rec.Finished
	if f.Code != 0 || f.Reason != "completed" || f.Status != "finished" {
		t.Errorf("finished = %+v", f)
	}
	if f.Chunks != rec.ChunkCount || f.Bytes != rec.Bytes || f.SHA256 != rec.SHA256 {
		t.Errorf("finished proof %d/%d/%s, platform holds %d/%d/%s", f.Chunks, f.Bytes, f.SHA256, rec.ChunkCount, rec.Bytes, rec.SHA256)
	}
	entries, returns := checkEvents(t, rec.Data)
	if entries == 0 || returns == 0 {
		t.Errorf("trace holds %d entry and %d return events; want both", entries, returns)
	}
	t.Logf("trace: %d chunks, %d bytes, %d entries, %d returns", rec.ChunkCount, rec.Bytes, entries, returns)
	eventually(t, 10*time.Second, "the tracer to be gone", func() bool { return !processAlive(tracerPID) })
	if _, err := os.Stat(s.FilePath); !os.IsNotExist(err) {
		t.Errorf("script %s still exists: %v", s.FilePath, err)
	}
	eventually(t, 10*time.Second, "running/all to be empty", func() bool {
		e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
		return len(all) == 0
	})
	if _, st := e.running(s.FilePath); st != http.StatusNotFound {
		t.Errorf("finished trace still answers %d", st)
	}
}

// TestBPFKillAndConcurrent kills a real trace mid-way and runs five at once.
func TestBPFKillAndConcurrent(t *testing.T) {
	bt := requireBpftrace(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt})
	id := e.putTemplate(bashTemplate)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	busyBash(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()

	t.Run("kill", func(t *testing.T) {
		s := e.start("BPF", id, 600)
		var ri runningInfo
		eventually(t, 30*time.Second, "output from the tracer", func() bool {
			ri, _ = e.running(s.FilePath)
			return ri.BytesRead > 100 && ri.PID > 0
		})
		st, body, _ := e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil)
		if st != http.StatusOK || string(body) != "Killed" {
			t.Fatalf("kill: %d %s", st, body)
		}
		rec := waitFinished(t, p, s.FilePath, 60*time.Second)
		if rec.Finished.Reason != "killed" || rec.ChunkCount == 0 {
			t.Errorf("finished %+v after %d chunks", rec.Finished, rec.ChunkCount)
		}
		eventually(t, 10*time.Second, "bpftrace to be gone after the kill", func() bool { return !processAlive(ri.PID) })
	})

	t.Run("five concurrent", func(t *testing.T) {
		var paths []string
		last := int64(0)
		for i := 0; i < 5; i++ {
			s := e.start("BPF", id, 3)
			if s.Thread <= last {
				t.Errorf("thread %d after %d: not increasing", s.Thread, last)
			}
			last = s.Thread
			paths = append(paths, s.FilePath)
		}
		var all []runningInfo
		e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
		if len(all) != 5 {
			t.Errorf("running/all lists %d traces, want 5", len(all))
		}
		for _, path := range paths {
			rec := waitFinished(t, p, path, 120*time.Second)
			entries, returns := checkEvents(t, rec.Data)
			if rec.Finished.Code != 0 || entries == 0 || returns == 0 {
				t.Errorf("%s: finished %+v with %d entries, %d returns", path, rec.Finished, entries, returns)
			}
		}
	})
	t.Run("modes", func(t *testing.T) {
		st, body, _ := e.do("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":3,"mode":"bogus"}`, id), nil)
		if st != http.StatusBadRequest || !strings.Contains(string(body), "mode") {
			t.Errorf("unknown mode: %d %s", st, body)
		}
		// Deterministic: each trace runs until its condition holds (output
		// for calls, probes attached for summary) and is then killed; no
		// race between bpftrace's attach time and its lasting.
		for _, mode := range []string{"calls", "summary"} {
			var s started
			e.mustJSON("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":600,"mode":%q}`, id, mode), http.StatusOK, &s)
			if mode == "calls" {
				waitRecord(t, p, s.FilePath, 60*time.Second, func(r platformtest.TraceRecord) bool {
					return bytes.Contains(r.Data, []byte(`"duration"`))
				})
			} else {
				waitAttached(t, e, s.FilePath, 3) // xmalloc's entry and return uprobes, the interval
				callsAfterAttach(t)
			}
			if st, body, _ := e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil); st != http.StatusOK {
				t.Fatalf("kill: %d %s", st, body)
			}
			rec := waitFinished(t, p, s.FilePath, 120*time.Second)
			want := "duration"
			if mode == "summary" {
				want = "hist"
			}
			if lines := modeLines(t, rec.Data, want); lines == 0 || rec.Finished.Reason != "killed" {
				t.Errorf("%s: %d lines with %q, finished %+v", mode, lines, want, rec.Finished)
			}
		}
	})
	if pids := processesRunning(e.TraceDir); len(pids) > 0 {
		t.Errorf("tracer processes left behind: %v", pids)
	}
}

// modeLines counts the JSON lines of data and requires each to hold key;
// bpftrace's own lines are skipped.
func modeLines(t *testing.T, data []byte, key string) int {
	t.Helper()
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
			continue
		}
		var ev map[string]interface{}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if _, ok := ev[key]; !ok {
			t.Fatalf("line %q lacks %q", sc.Text(), key)
		}
		lines++
	}
	return lines
}

// waitAttached waits until the bpftrace of the trace at path has attached
// its probes: its uprobes and interval probe are perf events, each an open
// anon_inode:[perf_event] descriptor, beside the one perf output buffer per
// online CPU that bpftrace opens first (every script prints); probes is how
// many probes to wait for. (bpftrace's "Attaching N probes..." banner is
// not in the delivered output: the endpoint removes bpftrace's notices.)
func waitAttached(t *testing.T, e *endpoint, path string, probes int) {
	t.Helper()
	probes += onlineCPUs(t)
	eventually(t, 60*time.Second, "bpftrace to attach its probes", func() bool {
		ri, _ := e.running(path)
		if ri.PID == 0 {
			return false
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", ri.PID))
		n := 0
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", ri.PID, fd.Name())); l == "anon_inode:[perf_event]" {
				n++
			}
		}
		return n >= probes
	})
}

// TestBPFSummarySurvives: a summary trace delivers its summary however it
// ends before its lasting: killed, or stopped by the endpoint's shutdown
// (SIGINT first, so bpftrace prints its END block).
func TestBPFSummarySurvives(t *testing.T) {
	bt := requireBpftrace(t)
	p := newPlatform(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	busyBash(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()
	for _, how := range []string{"killed", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt})
			id := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF"}`)
			var s started
			e.mustJSON("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":600,"mode":"summary"}`, id), http.StatusOK, &s)
			waitAttached(t, e, s.FilePath, 3) // xmalloc's entry and return uprobes, the interval
			callsAfterAttach(t)
			if how == "killed" {
				if st, body, _ := e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil); st != http.StatusOK {
					t.Fatalf("kill: %d %s", st, body)
				}
			} else if code := e.Stop(); code != 0 {
				t.Errorf("endpoint stopped with code %d", code)
			}
			rec := waitFinished(t, p, s.FilePath, 120*time.Second)
			if lines := modeLines(t, rec.Data, "hist"); lines == 0 || rec.Finished.Reason != how {
				t.Errorf("%d histogram lines, finished %+v", lines, rec.Finished)
			}
		})
	}
}

// fakeTemplate is a BPF template run by the fake tracer in mode.
func fakeTemplate(mode string) string {
	return fmt.Sprintf(`{"process":"/bin/bash","functions":["xmalloc"],"environment":["BPFTRACE_FAKE_MODE"],"value":[%q],"traceType":"BPF"}`, mode)
}

// TestTracerLifecycle drives process edge cases bpftrace cannot produce on
// demand, through the real endpoint, with the fake tracer.
func TestTracerLifecycle(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t, platformtest.WithDiscardData())
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})

	t.Run("exits non-zero at once", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate("exit 3")), 60)
		f := waitFinished(t, p, s.FilePath, 30*time.Second).Finished
		if f.Code != 3 || f.Reason != "failed" || !bytes.Contains([]byte(f.Stderr), []byte("exiting with code 3")) {
			t.Errorf("finished %+v", f)
		}
	})
	t.Run("floods stdout with 100 MB", func(t *testing.T) {
		const size = 100 << 20
		s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("flood %d", size))), 600)
		rec := waitFinished(t, p, s.FilePath, 5*time.Minute)
		if rec.Bytes < size || rec.Finished.Code != 0 || rec.Finished.Bytes != rec.Bytes || rec.Finished.SHA256 != rec.SHA256 {
			t.Errorf("delivered %d bytes in %d chunks; finished %+v", rec.Bytes, rec.ChunkCount, rec.Finished)
		}
		if max := int64(51200); rec.ChunkCount < rec.Bytes/max {
			t.Errorf("%d chunks for %d bytes: a chunk exceeds submit-chunk-size", rec.ChunkCount, rec.Bytes)
		}
	})
	t.Run("floods stderr", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("stderrflood %d", 50<<20))), 600)
		f := waitFinished(t, p, s.FilePath, 2*time.Minute).Finished
		if len(f.Stderr) > 65536+200 || !bytes.HasSuffix([]byte(f.Stderr), []byte("END-OF-STDERR\n")) {
			t.Errorf("stderr of %d bytes ending %q", len(f.Stderr), tail(f.Stderr, 40))
		}
	})
	t.Run("writes nothing", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate("silent 1")), 60)
		rec := waitFinished(t, p, s.FilePath, 30*time.Second)
		if rec.ChunkCount != 0 || rec.Finished.Code != 0 || rec.Finished.Reason != "completed" {
			t.Errorf("chunks %d, finished %+v", rec.ChunkCount, rec.Finished)
		}
	})
	t.Run("quiet trace is flushed", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate("lines 3 3s")), 60)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := p.WaitFor(ctx, s.FilePath, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 1 }); err != nil {
			t.Fatal(err)
		}
		// The first line arrived while the tracer still runs: flushed by
		// time, not by the buffer filling or the tracer ending.
		if ri, st := e.running(s.FilePath); st != http.StatusOK || ri.State != "running" {
			t.Errorf("after the first chunk the trace is %d %q, want still running", st, ri.State)
		}
		rec := waitFinished(t, p, s.FilePath, 30*time.Second)
		if rec.Bytes == 0 || rec.ChunkCount < 2 {
			t.Errorf("quiet trace: %d chunks, %d bytes", rec.ChunkCount, rec.Bytes)
		}
	})
	t.Run("ignores SIGINT", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate("ignoreint")), 600)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.WaitFor(ctx, s.FilePath, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 1 })
		e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil)
		f := waitFinished(t, p, s.FilePath, 30*time.Second).Finished
		if f.Code != 137 || f.Reason != "killed" {
			t.Errorf("finished %+v, want code 137 (SIGKILL after the grace) reason killed", f)
		}
	})
	t.Run("outlives lasting", func(t *testing.T) {
		s := e.start("BPF", e.putTemplate(fakeTemplate("ignoreint")), 1)
		f := waitFinished(t, p, s.FilePath, 60*time.Second).Finished
		if f.Code != 137 || f.Reason != "timed-out" {
			t.Errorf("finished %+v, want code 137 reason timed-out", f)
		}
	})
	t.Run("children die with the trace", func(t *testing.T) {
		p2 := newPlatform(t)
		e2 := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p2.URL()})
		for _, mode := range []string{"fork 3", "fork 3 setsid"} {
			s := e2.start("BPF", e2.putTemplate(fakeTemplate(mode)), 600)
			children := waitChildren(t, p2, s.FilePath, 3)
			e2.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil)
			waitFinished(t, p2, s.FilePath, 30*time.Second)
			for _, pid := range children {
				eventually(t, 10*time.Second, fmt.Sprintf("child %d (%s) to die", pid, mode), func() bool { return !processAlive(pid) })
			}
		}
	})
	if st, _, _ := e.do("GET", "/heartbeat", "", nil); st != http.StatusOK {
		t.Errorf("endpoint unhealthy after the edge cases: %d", st)
	}
}

// waitChildren waits until the fake tracer of path reported n children and
// returns their pids.
func waitChildren(t *testing.T, p *platformtest.Platform, path string, n int) []int {
	t.Helper()
	var pids []int
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.WaitFor(ctx, path, func(r platformtest.TraceRecord) bool {
		pids = pids[:0]
		sc := bufio.NewScanner(bytes.NewReader(r.Data))
		for sc.Scan() {
			var l struct{ Child int }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Child > 0 {
				pids = append(pids, l.Child)
			}
		}
		return len(pids) >= n
	})
	if err != nil {
		t.Fatalf("waiting for %d children of %s: %v", n, path, err)
	}
	return pids
}

// TestEndpointStops checks that neither a graceful stop nor a crash of the
// endpoint leaves a tracer behind, and that a restart delivers what a crash
// left in the spool.
func TestEndpointStops(t *testing.T) {
	requireRoot(t)
	db := stores(t)["sqlite"]

	t.Run("SIGTERM", func(t *testing.T) {
		p := newPlatform(t)
		e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL()})
		s := e.start("BPF", e.putTemplate(fakeTemplate("fork 2")), 600)
		children := waitChildren(t, p, s.FilePath, 2)
		ri, _ := e.running(s.FilePath)
		if code := e.Stop(); code != 0 {
			t.Errorf("endpoint exit code %d after SIGTERM, want 0", code)
		}
		rec := p.Trace(s.FilePath)
		if rec.Finished == nil || rec.Finished.Reason != "shutdown" {
			t.Errorf("finished after SIGTERM: %+v", rec.Finished)
		}
		for _, pid := range append(children, ri.PID) {
			eventually(t, 10*time.Second, fmt.Sprintf("process %d to be gone", pid), func() bool { return !processAlive(pid) })
		}
	})

	t.Run("SIGKILL then restart", func(t *testing.T) {
		p := newPlatform(t)
		data := t.TempDir()
		p.Stop() // the platform is down: output stays in the spool
		e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
		s := e.start("BPF", e.putTemplate(fakeTemplate("fork 2")), 600)
		var ri runningInfo
		eventually(t, 30*time.Second, "output read from the tracer", func() bool {
			ri, _ = e.running(s.FilePath)
			return ri.BytesRead > 0 && ri.PID > 0
		})
		e.Kill()
		eventually(t, 10*time.Second, "the tracer to die with the endpoint", func() bool { return !processAlive(ri.PID) })
		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
		e2 := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
		rec := waitFinished(t, p, s.FilePath, 60*time.Second)
		if rec.Finished.Reason != "interrupted" || rec.Bytes < ri.BytesRead {
			t.Errorf("after restart: finished %+v, %d bytes (endpoint had read %d)", rec.Finished, rec.Bytes, ri.BytesRead)
		}
		children := waitChildren(t, p, s.FilePath, 2)
		for _, pid := range children {
			eventually(t, 10*time.Second, fmt.Sprintf("child %d to be gone", pid), func() bool { return !processAlive(pid) })
		}
		if st, _, _ := e2.do("GET", "/heartbeat", "", nil); st != http.StatusOK {
			t.Errorf("restarted endpoint unhealthy: %d", st)
		}
	})
}

// TestSTAPOnThisMachine starts a real SystemTap trace. Whether stap can
// load its module depends on the host (kernel headers, debuginfo), so the
// test asserts what holds on every host: the trace runs or fails cleanly.
// Either it completes (code 0, reason completed) or it ends with a non-zero
// code, reason failed, and stap's stderr saying why; and the endpoint stays
// healthy.
func TestSTAPOnThisMachine(t *testing.T) {
	requireRoot(t)
	stap, err := exec.LookPath("stap")
	if err != nil {
		if inCI() {
			t.Fatal("stap is not installed (CI=true): apt-get install -y systemtap")
		}
		t.Skip("SKIPPING: stap is not installed")
	}
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), StapPath: stap})
	id := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"STAP"}`)
	s := e.start("STAP", id, 5)
	f := waitFinished(t, p, s.FilePath, 3*time.Minute).Finished
	switch {
	case f.Code == 0 && f.Reason != "completed":
		t.Errorf("stap finished %+v; code 0 must be reason completed", f)
	case f.Code != 0 && (f.Stderr == "" || f.Reason != "failed"):
		t.Errorf("stap finished %+v; a failing stap must say why on stderr with reason failed", f)
	}
	t.Logf("stap: code %d, stderr %q", f.Code, tail(f.Stderr, 300))
	if st, _, _ := e.do("GET", "/heartbeat", "", nil); st != http.StatusOK {
		t.Errorf("endpoint unhealthy after the STAP trace: %d", st)
	}
}

// onlineCPUs counts the CPUs in /sys/devices/system/cpu/online ("0-3,6").
func onlineCPUs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatalf("reading the online CPUs: %v", err)
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			t.Fatalf("parsing the online CPUs %q", b)
		}
		n += z - a + 1
	}
	return n
}

// callsAfterAttach runs one bash, whose xmalloc and xfree calls complete
// after the probes are attached: a summary then has something to report
// whatever the background load did.
func callsAfterAttach(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("/bin/bash", "-c", "for i in 1 2 3; do x=$i$i; done").CombinedOutput(); err != nil {
		t.Fatalf("running bash: %v\n%s", err, out)
	}
}
