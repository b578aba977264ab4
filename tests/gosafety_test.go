package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// goTarget is the traced Go program: each round runs main.work in a fresh
// goroutine (a small stack), and work recurses deep enough that the stack
// grows and is copied while work's frame is live. A uretprobe on main.work
// replaces its return address with the kernel's trampoline, which the copy
// does not survive ("fatal error: unknown caller pc"). It prints a checksum
// and exits 0.
const goTarget = `package main

import (
	"fmt"
	"sync"
	"time"
)

//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256]&1)
}

//go:noinline
func work(i int) int { return deep(64) + 7*i + 1 }

func main() {
	sum := 0
	for round := 0; round < goRounds; round++ {
		var wg sync.WaitGroup
		var part int
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < goCalls; i++ {
				part += work(i)
			}
		}()
		wg.Wait()
		sum += part
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("checksum", sum)
}
`

// The Go program's shape: rounds of calls, 10 ms apart (about 4 s).
const (
	goRounds = 400
	goCalls  = 100
)

// goChecksum is what the Go program prints: deep(n) adds n&1 at each level
// (pad[n%256] = byte(n)), so deep(64) is 32; computed here the same way.
func goChecksum() int {
	deep := func(n int) int {
		s := 0
		for k := n; k > 0; k-- {
			s += int(byte(k) & 1)
		}
		return s
	}
	sum := 0
	for range goRounds {
		for i := range goCalls {
			sum += deep(64) + 7*i + 1
		}
	}
	return sum
}

// buildGoTarget builds the Go program into dir.
func buildGoTarget(t *testing.T, dir string) string {
	t.Helper()
	src := strings.NewReplacer("goRounds", fmt.Sprint(goRounds), "goCalls", fmt.Sprint(goCalls)).Replace(goTarget)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gotarget\n\ngo 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gotarget")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the traced program: %v\n%s", err, out)
	}
	return bin
}

// TestGoBinarySafe traces a real Go program with the real bpftrace through
// the endpoint in mode events: the program must exit 0 with the right
// checksum, entry events arrive and no return probe was put in. Modes calls
// and summary are refused with a 400 that says why, and start nothing.
func TestGoBinarySafe(t *testing.T) {
	bt := requireBpftrace(t)
	dir := t.TempDir()
	bin := buildGoTarget(t, dir)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["main.work"],"traceType":"BPF"}`, bin))
	stapID := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["main.work"],"traceType":"STAP"}`, bin))

	for _, tc := range []struct {
		typ  string
		id   int64
		mode string
	}{{"BPF", id, "calls"}, {"BPF", id, "summary"}, {"STAP", stapID, "calls"}, {"STAP", stapID, "summary"}} {
		st, body, _ := e.do("POST", "/trace/start", fmt.Sprintf(`{"traceT":%q,"traceId":%d,"lasting":10,"mode":%q}`, tc.typ, tc.id, tc.mode), nil)
		var res struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &res)
		if st != http.StatusBadRequest || !strings.Contains(res.Error, "Go binary") || !strings.Contains(res.Error, "crashes the program") {
			t.Errorf("%s start in mode %s = %d %s, want 400 saying a return probe crashes a Go program", tc.typ, tc.mode, st, body)
		}
	}
	var all []runningInfo
	e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
	if len(all) != 0 {
		t.Fatalf("refused starts left traces running: %+v", all)
	}

	s := e.start("BPF", id, 60)
	// bpftrace prints its banner as it attaches; the program runs for
	// seconds, so most of its calls come after the probe is in place.
	waitAttached(t, e, s.FilePath, 2) // main.work's entry uprobe, the interval
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("the traced Go program failed while traced: %v\n%s", err, tail(string(out), 4000))
	}
	if want := fmt.Sprintf("checksum %d\n", goChecksum()); string(out) != want {
		t.Errorf("the traced Go program printed %q, want %q", out, want)
	}
	// Entry events of the program arrive (wait for the first one: output
	// is flushed within a second).
	waitFor(t, p, s.FilePath, 30*time.Second, "entry events of main.work", func(r platformtest.TraceRecord) bool {
		return bytes.Contains(r.Data, []byte(`"probe":"uprobe:`+bin+`:main.work"`))
	})
	e.mustJSON("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, s.FilePath), http.StatusOK, nil)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	entries, returns := 0, 0
	for _, line := range bytes.Split(rec.Data, []byte("\n")) {
		var ev map[string]any
		if json.Unmarshal(line, &ev) != nil {
			continue // bpftrace's banner, blank lines, "Lost N events"
		}
		if _, ok := ev["return"]; ok {
			returns++
		}
		if ev["probe"] == "uprobe:"+bin+":main.work" {
			entries++
		}
	}
	if entries == 0 || returns != 0 || bytes.Contains(rec.Data, []byte("uretprobe")) {
		t.Errorf("trace of the Go program: %d entry and %d return events; want entries and no returns", entries, returns)
	}
	t.Logf("Go program exited 0 while traced; %d entry events, finished %+v", entries, rec.Finished)
}

// waitFor waits until cond holds for the platform's record of path.
func waitFor(t *testing.T, p *platformtest.Platform, path string, within time.Duration, what string, cond func(platformtest.TraceRecord) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := p.Trace(path)
		if cond(r) {
			return
		}
		if r.Finished != nil {
			t.Fatalf("trace finished before %s: %+v\n%s", what, r.Finished, tail(string(r.Data), 2000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (%d bytes so far)", within, what, r.Bytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPreflightRefuses checks PUT /trace against a C binary built with
// gcc and /bin/bash: an unknown function, a wildcard matching nothing, a
// wildcard expanding past lambda.max-probes and a binary that is no ELF
// file are refused with 400 saying why, and nothing is stored.
func TestPreflightRefuses(t *testing.T) {
	cbin := buildC(t, "target", "__attribute__((noinline)) int lambda_target(int x) { return x + 1; }\n"+
		"int main(void) { return lambda_target(-1); }\n")
	dir := filepath.Dir(cbin)
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"]})
	tmpl := func(process string, functions ...string) string {
		b, _ := json.Marshal(map[string]any{"process": process, "functions": functions, "traceType": "BPF"})
		return string(b)
	}
	for _, tc := range []struct {
		name string
		body string
		say  []string
	}{
		{"unknown function", tmpl(cbin, "lambda_target", "no_such_function"),
			[]string{"functions[1]", `"no_such_function"`, "matches no function symbol", "inlined"}},
		{"wildcard matching nothing", tmpl(cbin, "zzz_*"), []string{"functions[0]", `wildcard "zzz_*"`, "matches no"}},
		{"all of bash", tmpl("/bin/bash", "*"), []string{"functions", "more than the limit of 40 (lambda.max-probes)"}},
		{"not ELF", tmpl(script, "main"), []string{"process", "not an ELF executable or shared library"}},
		{"missing binary", tmpl(filepath.Join(dir, "gone"), "main"), []string{"process", "does not exist"}},
	} {
		st, body, _ := e.do("PUT", "/trace", tc.body, map[string]string{"Content-Type": "application/json"})
		var res struct {
			Error string `json:"error"`
		}
		if st != http.StatusBadRequest || json.Unmarshal(body, &res) != nil {
			t.Errorf("%s: PUT = %d %s, want 400", tc.name, st, body)
			continue
		}
		for _, s := range tc.say {
			if !strings.Contains(res.Error, s) {
				t.Errorf("%s: 400 error %q does not say %q", tc.name, res.Error, s)
			}
		}
	}
	var list []json.RawMessage
	e.mustJSON("GET", "/traces", "", http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("refused templates were stored: %s", list)
	}
	// The same binary with a function it has is stored.
	id := e.putTemplate(tmpl(cbin, "lambda_target"))
	e.putTemplate(tmpl(cbin, "lambda_*"))
	// The preflight runs again at start: a binary that is no longer ELF
	// is refused there, naming process, and nothing runs.
	if err := os.Rename(script, cbin); err != nil {
		t.Fatal(err)
	}
	st, body, _ := e.do("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10}`, id), nil)
	if st != http.StatusBadRequest || !strings.Contains(string(body), "process") || !strings.Contains(string(body), "not an ELF") {
		t.Errorf("start on a binary replaced by a script = %d %s, want 400 naming process", st, body)
	}
	var all []runningInfo
	e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
	if len(all) != 0 {
		t.Errorf("a refused start left traces running: %+v", all)
	}
}

// TestBinaryReplacedUnderTrace replaces a trace's binary while the trace
// runs (a new file renamed over the path, as a package upgrade does): the
// endpoint stops the trace with reason binary-changed.
func TestBinaryReplacedUnderTrace(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	bash, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, bash, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["xmalloc"],"environment":["BPFTRACE_FAKE_MODE"],"value":["silent 60"],"traceType":"BPF"}`, bin))
	s := e.start("BPF", id, 60)
	eventually(t, 20*time.Second, "the tracer running", func() bool { ri, _ := e.running(s.FilePath); return ri.PID > 0 })

	next := filepath.Join(dir, "app.new")
	if err := os.WriteFile(next, bash, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	rec := waitFinished(t, p, s.FilePath, 30*time.Second)
	if rec.Finished.Reason != "binary-changed" {
		t.Errorf("finished = %+v, want reason binary-changed", rec.Finished)
	}
}
