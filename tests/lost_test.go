package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// buildC compiles the C program code with gcc -O1 into the test's temp
// dir and returns the binary's path (gcc is required under CI=true).
func buildC(t *testing.T, name, code string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if inCI() {
			t.Fatal("gcc is not installed (CI=true): it builds the traced C program")
		}
		t.Skip("SKIPPING: gcc is not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, name+".c")
	if err := os.WriteFile(src, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command(gcc, "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// buildCallLoop builds a C program that calls lambda_f as often as its
// argument says and exits 0.
func buildCallLoop(t *testing.T) string {
	return buildC(t, "loop", `#include <stdlib.h>
__attribute__((noinline)) long lambda_f(long x) { __asm__ volatile(""); return x * 2; }
int main(int argc, char **argv) {
	long n = atol(argv[1]), s = 0;
	for (long i = 0; i < n; i++) s += lambda_f(i);
	return s == 42;
}
`)
}

// countEventLines checks that every delivered line is one JSON object (the
// endpoint removes bpftrace's own notices) and an entry or return event,
// and counts the events of process pid.
func countEventLines(t *testing.T, data []byte, pid int) (events int64) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Probe  *string `json:"probe"`
			Return *string `json:"return"`
			PID    int     `json:"pid"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("delivered line is not one JSON object: %q: %v", sc.Bytes(), err)
		}
		if ev.Probe == nil && ev.Return == nil {
			t.Fatalf("delivered line is no event: %q", sc.Bytes())
		}
		if ev.PID == pid {
			events++
		}
	}
	return events
}

// TestBPFLostEventsExact: a one-page perf buffer forces bpftrace to drop
// events; the events delivered plus the finished message's lostEvents is
// exactly what the program caused, every delivered line is JSON (no
// "Attaching" banner, blank lines or "Lost N events" notices), and
// RunningInfo shows the count while the trace runs.
func TestBPFLostEventsExact(t *testing.T) {
	bt := requireBpftrace(t)
	bin := buildCallLoop(t)
	const calls = 200000
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt})
	body, _ := json.Marshal(map[string]any{
		"process": bin, "functions": []string{"lambda_f"}, "traceType": "BPF",
		"environment": []string{"BPFTRACE_PERF_RB_PAGES"}, "value": []string{"1"},
	})
	id := e.putTemplate(string(body))
	s := e.start("BPF", id, 120)
	// Attached once a canary call's return arrives (one call per run, far
	// apart: a one-page buffer holds them).
	eventually(t, 60*time.Second, "a canary call traced (probes attached)", func() bool {
		if out, err := exec.Command(bin, "1").CombinedOutput(); err != nil {
			t.Fatalf("canary run: %v\n%s", err, out)
		}
		return bytes.Contains(p.Trace(s.FilePath).Data, []byte(`"return":`))
	})
	cmd := exec.Command(bin, strconv.Itoa(calls))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("traced program: %v\n%s", err, out)
	}
	pid := cmd.Process.Pid
	// Wait until bpftrace has accounted for every event of the run
	// (delivered or reported lost), then kill the trace. The kernel writes
	// the record of a loss into the perf buffer only once it has room again,
	// on the next event: a canary call (another pid) after the run makes
	// it; bpftrace prints "Lost N events" when it reads that record.
	want := int64(2 * calls)
	var ri runningInfo
	eventually(t, 60*time.Second, "every event delivered or reported lost", func() bool {
		if out, err := exec.Command(bin, "1").CombinedOutput(); err != nil {
			t.Fatalf("canary run: %v\n%s", err, out)
		}
		ri, _ = e.running(s.FilePath)
		return countEventLines(t, p.Trace(s.FilePath).Data, pid)+ri.LostEvents >= want
	})
	e.mustJSON("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), http.StatusOK, nil)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	got := countEventLines(t, rec.Data, pid)
	if got+rec.Finished.LostEvents != want {
		t.Fatalf("delivered %d events + lostEvents %d = %d, want exactly %d (RunningInfo said %d lost)",
			got, rec.Finished.LostEvents, got+rec.Finished.LostEvents, want, ri.LostEvents)
	}
	if rec.Finished.LostEvents < ri.LostEvents {
		t.Errorf("finished lostEvents %d < RunningInfo's %d", rec.Finished.LostEvents, ri.LostEvents)
	}
	if rec.Finished.LostEvents == 0 {
		t.Logf("bpftrace kept up with a one-page buffer this time: nothing lost")
	}
	if ri.BytesRead < rec.Bytes {
		t.Errorf("RunningInfo bytesRead %d < delivered bytes %d: bytesRead counts raw stdout", ri.BytesRead, rec.Bytes)
	}
	t.Logf("%d events delivered, %d lost (finished %+v)", got, rec.Finished.LostEvents, rec.Finished)
}
