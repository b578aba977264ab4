package tests

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// TestCLIEndToEnd drives the API commands of the real binary against the
// real endpoint: a template added, listed, started and watched until it is
// delivered, another started and killed, the template removed.
func TestCLIEndToEnd(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})
	cfg := filepath.Join(filepath.Dir(e.TraceDir), "lambda.toml") // where the harness writes it
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(endpointBin, append(args[:2:2], append([]string{"--config", cfg}, args[2:]...)...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lambda-endpoint %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	out := cli("templates", "add", "--process", "/bin/bash", "--functions", "xmalloc", "--env", "BPFTRACE_FAKE_MODE=lines 60 50ms")
	m := regexp.MustCompile(`^template (\d+) stored: BPF /bin/bash: xmalloc\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("templates add printed %q", out)
	}
	id := m[1]
	var ts []struct {
		TraceNo int64 `json:"traceNo"`
		Info    struct {
			Process     string   `json:"process"`
			Environment []string `json:"environment"`
			Value       []string `json:"value"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(cli("templates", "ls", "--json")), &ts); err != nil || len(ts) != 1 || fmt.Sprint(ts[0].TraceNo) != id ||
		ts[0].Info.Value[0] != "lines 60 50ms" {
		t.Fatalf("templates ls --json: %+v %v", ts, err)
	}
	if ls := cli("templates", "ls"); !strings.Contains(ls, "BPFTRACE_FAKE_MODE=lines 60 50ms") || !strings.HasPrefix(ls, "ID ") {
		t.Errorf("templates ls:\n%s", ls)
	}

	// start --watch follows the trace until it is delivered (stdout is a
	// pipe: plain lines).
	out = cli("traces", "start", "--lasting", "1m", "--watch", "--interval", "100ms", id)
	m = regexp.MustCompile(`^thread (\d+) started: (\S+\.trace)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("traces start printed %q", out)
	}
	path := m[2]
	if !strings.Contains(out, "thread "+m[1]+" BPF events ") || !strings.HasSuffix(out, path+": delivered\n") {
		t.Errorf("traces start --watch printed:\n%s", out)
	}
	rec := waitFinished(t, p, path, 10*time.Second) // delivered already: the watch ended
	checkSeqs(t, rec.Data, 60, false)
	if !regexp.MustCompile(`running  read \d+ B  acked [1-9]\d* chunks`).MatchString(out) {
		t.Errorf("the watch never showed an acknowledged chunk of the running trace (%d in all):\n%s", rec.ChunkCount, out)
	}

	// A long trace killed through the CLI.
	long := cli("templates", "add", "--json", "--process", "/bin/bash", "--functions", "xmalloc", "--env", "BPFTRACE_FAKE_MODE=lines 100000 20ms")
	var added struct{ TraceNo int64 }
	if err := json.Unmarshal([]byte(long), &added); err != nil {
		t.Fatalf("templates add --json: %q %v", long, err)
	}
	// An engine the CLI does not know is a usage error (exit 2), nothing started.
	cmd := exec.Command(endpointBin, "traces", "start", "--config", cfg, "--lasting", "600", "--engine", "ebpf", fmt.Sprint(added.TraceNo))
	if b, err := cmd.CombinedOutput(); !isExit(err, 2) || !strings.Contains(string(b), `--engine "ebpf": want bpftrace or native`) {
		t.Errorf("traces start --engine ebpf: %v\n%s", err, b)
	}
	var s started
	if err := json.Unmarshal([]byte(cli("traces", "start", "--json", "--lasting", "600", "--engine", "bpftrace", fmt.Sprint(added.TraceNo))), &s); err != nil || s.FilePath == "" {
		t.Fatalf("traces start --json --engine bpftrace: %+v %v", s, err)
	}
	eventually(t, 30*time.Second, "the trace listed by traces ls", func() bool {
		return strings.Contains(cli("traces", "ls"), s.FilePath)
	})
	var rs []struct{ FilePath, Engine string }
	if err := json.Unmarshal([]byte(cli("traces", "ls", "--json")), &rs); err != nil || len(rs) != 1 || rs[0].FilePath != s.FilePath || rs[0].Engine != "bpftrace" {
		t.Errorf("traces ls --json of the trace started with --engine bpftrace: %+v %v", rs, err)
	}
	// Watch it in the background, kill it, and the watch ends with it.
	watch := exec.Command(endpointBin, "traces", "watch", "--config", cfg, "--json", "--interval", "100ms", s.FilePath)
	wout := &testsupport.SyncBuffer{}
	watch.Stdout, watch.Stderr = wout, wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the watch to show the trace", func() bool { return strings.Contains(wout.String(), `"bytesRead"`) })
	if out := cli("traces", "kill", s.FilePath); out != "killed "+s.FilePath+"\n" {
		t.Errorf("traces kill printed %q", out)
	}
	werr := make(chan error, 1)
	go func() { werr <- watch.Wait() }()
	select {
	case err := <-werr:
		if err != nil {
			t.Errorf("traces watch: %v\n%s", err, wout.String())
		}
	case <-time.After(60 * time.Second):
		watch.Process.Kill()
		t.Fatalf("traces watch did not end after the kill:\n%s", wout.String())
	}
	if out := wout.String(); !strings.HasSuffix(out, `"state":"delivered"}`+"\n") {
		t.Errorf("traces watch --json:\n%s", out)
	}
	if f := waitFinished(t, p, s.FilePath, 10*time.Second).Finished; f.Reason != "killed" {
		t.Errorf("the killed trace finished with reason %q", f.Reason)
	}
	if out := cli("traces", "ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("traces ls --json after delivery: %q", out)
	}
	if out := cli("templates", "rm", id, fmt.Sprint(added.TraceNo)); out != "template "+id+" removed\ntemplate "+fmt.Sprint(added.TraceNo)+" removed\n" {
		t.Errorf("templates rm printed %q", out)
	}
	// An API error reaches the user with the endpoint's reason, exit 1.
	cmd = exec.Command(endpointBin, "templates", "rm", "--config", cfg, id)
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(b), "404") {
		t.Errorf("removing a removed template: %v\n%s", err, b)
	}
}

// isExit reports whether err is the exit of a process with code.
func isExit(err error, code int) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && ee.ExitCode() == code
}
