package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
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
	if !strings.Contains(out, "thread "+m[1]+" BPF events ") || !strings.HasSuffix(out, path+": delivered: completed, exit code 0\n") {
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
	// The last line says how the trace ended: killed on request, delivered.
	lines := strings.Split(strings.TrimSpace(wout.String()), "\n")
	var end struct {
		FilePath, State, Reason string
		Code                    *int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil || end.FilePath != s.FilePath || end.State != "delivered" ||
		end.Reason != "killed" || end.Code == nil {
		t.Errorf("traces watch --json: last line %+v %v:\n%s", end, err, wout.String())
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

// cliRun runs the real binary's "GROUP CMD --config cfg ARGS..." and
// returns its stdout, stderr and exit code. (GORACE: no second of sleep at
// the exit of a race-enabled binary.)
func cliRun(t *testing.T, cfg string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(endpointBin, append(args[:2:2], append([]string{"--config", cfg}, args[2:]...)...)...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("lambda-endpoint %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// stderrBlock is what the CLI prints of a stderr tail: "stderr:" and its
// lines indented, or nothing for none or an empty one; with maxLines > 0
// only the last maxLines lines, under "stderr (last M of N lines):".
func stderrBlock(tail *string, maxLines int) string {
	if tail == nil || strings.TrimSpace(*tail) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(*tail, "\n"), "\n")
	head := "stderr:\n"
	if maxLines > 0 && len(lines) > maxLines {
		head = fmt.Sprintf("stderr (last %d of %d lines):\n", maxLines, len(lines))
		lines = lines[len(lines)-maxLines:]
	}
	return head + "  " + strings.Join(lines, "\n  ") + "\n"
}

// TestCLITraceOutcomes: traces start --watch ends with how the trace
// ended, from the run history (reason, exit code, end of stderr), and
// exits 1 unless it ran its course; traces history and describe show the
// same runs; describe and kill of a path with no run say so and exit 1.
func TestCLITraceOutcomes(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL(),
		Extra: "bpf-env-allow = [\"BPFTRACE_FAKE_MODE=any\"]\nstap-env-allow = [\"SYSTEMTAP_FAKE_MODE=any\"]\n"})
	cfg := filepath.Join(filepath.Dir(e.TraceDir), "lambda.toml") // where the harness writes it
	startedRe := regexp.MustCompile(`^thread (\d+) started: (\S+\.trace)\n`)
	modeVar := map[string]string{"BPF": "BPFTRACE_FAKE_MODE", "STAP": "SYSTEMTAP_FAKE_MODE"}

	cases := []struct {
		name, typ, mode string
		exit            int    // of traces start --watch
		end             string // the line after "PATH: "
		stderrEnd       string // how the tracer's stderr ends
		reason, code    string // in traces history and describe
	}{
		{"STAP tracer fails", "STAP", "exit 1", 1, "ended: failed, exit code 1", "faketracer: exiting with code 1\n", "failed", "1"},
		{"BPF tracer fails", "BPF", "exit 3", 1, "ended: failed, exit code 3", "faketracer: exiting with code 3\n", "failed", "3"},
		{"tracer killed by a signal", "BPF", "raise 9", 1, "ended: failed, exit code 137", "", "failed", "137"},
		{"completed", "BPF", "lines 3 10ms", 0, "delivered: completed, exit code 0", "", "completed", "0"},
		{"completed, long stderr", "STAP", "stderrflood 10000", 0, "delivered: completed, exit code 0", "END-OF-STDERR\n", "completed", "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, code := cliRun(t, cfg, "templates", "add", "--json", "--type", c.typ, "--process", "/bin/bash", "--functions", "xmalloc",
				"--env", modeVar[c.typ]+"="+c.mode)
			var added struct{ TraceNo int64 }
			if err := json.Unmarshal([]byte(out), &added); code != 0 || err != nil {
				t.Fatalf("templates add: exit %d: %q %v", code, out, err)
			}
			id := fmt.Sprint(added.TraceNo)
			out, errOut, code := cliRun(t, cfg, "traces", "start", "--type", c.typ, "--lasting", "60", "--watch", "--interval", "100ms", id)
			m := startedRe.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("traces start --watch printed %q (stderr %q)", out, errOut)
			}
			path := m[2]

			// What the endpoint says of the run is what the CLI prints.
			var api struct {
				Runs []struct {
					FilePath, State, Reason string
					Code                    *int
					StderrTail              *string
				}
			}
			e.mustJSON("GET", "/traces/history?path="+url.QueryEscape(path), "", http.StatusOK, &api)
			if len(api.Runs) != 1 || api.Runs[0].State != "finished" || api.Runs[0].Reason != c.reason || fmt.Sprint(deref(api.Runs[0].Code)) != c.code {
				t.Fatalf("GET /traces/history?path=: %+v", api.Runs)
			}
			tail := api.Runs[0].StderrTail
			if tail == nil {
				t.Fatal("the endpoint gave no stderrTail for a run it saw finish")
			}
			if !strings.HasSuffix(*tail, c.stderrEnd) {
				t.Errorf("the endpoint's stderr tail %q does not end in %q", *tail, c.stderrEnd)
			}
			want := path + ": " + c.end + "\n" + stderrBlock(tail, 20)
			if code != c.exit || !strings.HasSuffix(out, want) || (c.exit != 0 && strings.Contains(out, "delivered")) {
				t.Errorf("traces start --watch: exit %d, want %d and the output to end in %q:\n%s\nstderr:\n%s", code, c.exit, want, out, errOut)
			}
			wantErr := ""
			if c.exit != 0 {
				wantErr = "lambda-endpoint traces: trace " + path + " " + c.end + "\n"
			}
			if errOut != wantErr {
				t.Errorf("traces start --watch stderr %q, want %q", errOut, wantErr)
			}
			waitFinished(t, p, path, 10*time.Second)

			// describe: everything about the run.
			out, errOut, code = cliRun(t, cfg, "traces", "describe", path)
			wantStderr := stderrBlock(tail, 0)
			if tail == nil {
				wantStderr = "stderr:        unknown (the endpoint keeps it for the runs it saw finish since it started)\n"
			}
			for _, want := range []string{"path:          " + path + "\n", "thread:        " + m[1] + "\n", "template:      " + id + " (" + c.typ + ")\n",
				"environment:   " + modeVar[c.typ] + "=" + c.mode + "\n", "state:         finished\n", "reason:        " + c.reason + "\n",
				"exit code:     " + c.code + "\n", "sha256:        "} {
				if code != 0 || !strings.Contains(out, want) || !strings.HasSuffix(out, wantStderr) {
					t.Errorf("traces describe: exit %d, want %q and the end %q in:\n%s%s", code, want, wantStderr, out, errOut)
				}
			}
			if out, _, code = cliRun(t, cfg, "traces", "describe", "--json", path); code != 0 || !strings.Contains(out, `"filePath":"`+path+`"`) ||
				!strings.Contains(out, `"reason":"`+c.reason+`"`) {
				t.Errorf("traces describe --json: exit %d: %s", code, out)
			}

			// history: its row, newest first.
			out, _, code = cliRun(t, cfg, "traces", "history", "--limit", "1")
			row := regexp.MustCompile(`(?m)^` + m[1] + `\s+` + id + `\s+` + c.typ + `\s+events\s+finished\s+` + regexp.QuoteMeta(c.reason) + `\s+` +
				c.code + `\s.*\s` + regexp.QuoteMeta(path) + `$`)
			if code != 0 || !strings.HasPrefix(out, "THREAD  TEMPLATE  TYPE") || strings.Count(out, "\n") != 2 || !row.MatchString(out) {
				t.Errorf("traces history --limit 1: exit %d:\n%s", code, out)
			}

			// Nothing runs at the path any more.
			if out, errOut, code := cliRun(t, cfg, "traces", "kill", path); code != 1 || out != "" || errOut != "lambda-endpoint traces: nothing running at "+path+"\n" {
				t.Errorf("traces kill of a delivered trace: exit %d, %q, %q", code, out, errOut)
			}
		})
	}

	// The whole history, filtered by state.
	out, errOut, code := cliRun(t, cfg, "traces", "history", "--state", "finished")
	if code != 0 || strings.Count(out, "\n") != len(cases)+1 || errOut != "" {
		t.Errorf("traces history --state finished: exit %d: %s%s", code, out, errOut)
	}
	out, _, code = cliRun(t, cfg, "traces", "history", "--state", "running,delivering")
	if code != 0 || out != "THREAD  TEMPLATE  TYPE  MODE  STATE  REASON  CODE  READ  ACKED  STARTED  RAN  PATH\n" {
		t.Errorf("traces history --state running,delivering: exit %d: %q", code, out)
	}
	for _, c := range []struct {
		name   string
		args   []string
		exit   int
		stderr string
	}{
		{"describe of no run", []string{"traces", "describe", "/tmp/no-such.trace"}, 1, "lambda-endpoint traces: no run at /tmp/no-such.trace\n"},
		{"kill of nothing", []string{"traces", "kill", "/tmp/no-such.trace"}, 1, "lambda-endpoint traces: nothing running at /tmp/no-such.trace\n"},
		{"history of an unknown state", []string{"traces", "history", "--state", "finishd"}, 2,
			"lambda-endpoint traces: --state \"finishd\": want running, delivering, finished, interrupted (did you mean finished?)\n"},
		{"history limit out of range", []string{"traces", "history", "--limit", "501"}, 2, "lambda-endpoint traces: --limit 501: want 1 to 500\n"},
		{"start of a template of the other type", []string{"traces", "start", "--lasting", "10", "1"}, 1,
			"lambda-endpoint traces: POST /trace/start: 404 Not Found: no BPF template 1 (template 1 is a STAP template: use --type STAP)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := cliRun(t, cfg, c.args...)
			if code != c.exit || out != "" || errOut != c.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q", code, out, errOut, c.exit, c.stderr)
			}
		})
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
