package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func running(state string, read, acked, chunks int64) Running {
	return Running{TemplateInfo: TemplateInfo{TraceType: "BPF"}, Thread: 7, FilePath: "/tmp/a.trace", StartedAt: t0, Lasting: 90,
		Mode: "events", State: state, BytesRead: read, BytesSubmitted: acked, ChunksSubmitted: chunks}
}

func TestProgressLine(t *testing.T) {
	lost := int64(12)
	withLost := running("running", 2048, 1024, 1)
	withLost.LostEvents = &lost
	killed := running("delivering", 5<<20, 3<<20, 60)
	killed.Reason = "killed"
	cases := []struct {
		name string
		r    Running
		now  time.Time
		want string
	}{
		{"starting", running("starting", 0, 0, 0), t0, "thread 7 BPF events starting  read 0 B  acked 0 chunks (0 B)  left 1:30  /tmp/a.trace"},
		{"running", running("running", 2048, 1024, 1), t0.Add(30 * time.Second), "thread 7 BPF events running  read 2.0 KiB  acked 1 chunks (1.0 KiB)  left 1:00  /tmp/a.trace"},
		{"lost events", withLost, t0.Add(89500 * time.Millisecond), "thread 7 BPF events running  read 2.0 KiB  acked 1 chunks (1.0 KiB)  left 0:01  lost 12 events  /tmp/a.trace"},
		{"delivering", killed, t0.Add(time.Hour), "thread 7 BPF events delivering (killed)  read 5.0 MiB  acked 60 chunks (3.0 MiB)  left 0:00  /tmp/a.trace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := progressLine(c.r, c.now); got != c.want {
				t.Errorf("\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestLeftAndSize(t *testing.T) {
	r := running("running", 0, 0, 0)
	r.Lasting = 7322
	for _, c := range []struct {
		now  time.Time
		want string
	}{{t0, "2:02:02"}, {t0.Add(7322 * time.Second), "0:00"}, {t0.Add(8000 * time.Second), "0:00"}} {
		if got := left(r, c.now); got != c.want {
			t.Errorf("left at %s = %q, want %q", c.now.Sub(t0), got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseLasting(t *testing.T) {
	for in, want := range map[string]int64{"60": 60, "10m": 600, "1h30m": 5400, "1s": 1} {
		if got, err := parseLasting(in); err != nil || got != want {
			t.Errorf("parseLasting(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5s", "soon", "500ms"} {
		if _, err := parseLasting(in); err == nil {
			t.Errorf("parseLasting(%q) accepted", in)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, c := range []struct {
		args     []string
		wantPos  string
		wantJSON bool
	}{
		{[]string{"a", "--json", "b"}, "a b", true},
		{[]string{"--json", "a"}, "a", true},
		{[]string{"a", "b"}, "a b", false},
		{[]string{"a", "--", "--json"}, "a --json", false},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, err := parseInterleaved(fs, c.args)
		if err != nil || strings.Join(pos, " ") != c.wantPos || *j != c.wantJSON {
			t.Errorf("%q: %q json=%v %v; want %q json=%v", c.args, pos, *j, err, c.wantPos, c.wantJSON)
		}
	}
}

func TestWatcher(t *testing.T) {
	a1 := running("running", 100, 0, 0)
	a2 := running("running", 200, 100, 1)
	steps := [][]Running{{a1}, {a1}, {a2}, {}}
	cases := []struct {
		name     string
		json     bool
		terminal bool
		want     string
	}{
		{"plain: a line per change", false, false,
			"thread 7 BPF events running  read 100 B  acked 0 chunks (0 B)  left 1:30  /tmp/a.trace\n" +
				"thread 7 BPF events running  read 200 B  acked 1 chunks (100 B)  left 1:30  /tmp/a.trace\n" +
				"/tmp/a.trace: delivered\n"},
		{"terminal: redrawn in place", false, true,
			"thread 7 BPF events running  read 100 B  acked 0 chunks (0 B)  left 1:30  /tmp/a.trace\n" +
				"\x1b[1A\x1b[2Kthread 7 BPF events running  read 100 B  acked 0 chunks (0 B)  left 1:30  /tmp/a.trace\n" +
				"\x1b[1A\x1b[2Kthread 7 BPF events running  read 200 B  acked 1 chunks (100 B)  left 1:30  /tmp/a.trace\n" +
				"\x1b[1A\x1b[2K/tmp/a.trace: delivered\n"},
		{"json", true, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &watcher{out: &b, json: c.json, terminal: c.terminal, last: map[string]string{}, reported: map[string]bool{}}
			for _, rs := range steps {
				w.show(rs, nil, t0)
			}
			if c.json {
				lines := strings.Split(strings.TrimSpace(b.String()), "\n")
				if len(lines) != 3 || !strings.Contains(lines[0], `"bytesRead":100`) || !strings.Contains(lines[1], `"bytesRead":200`) || lines[2] != `{"filePath":"/tmp/a.trace","state":"delivered"}` {
					t.Errorf("json lines:\n%s", b.String())
				}
				return
			}
			if b.String() != c.want {
				t.Errorf("\n got %q\nwant %q", b.String(), c.want)
			}
		})
	}
}

// TestStartRequestEngine: "engine" is on the wire only when --engine is
// given, so that the endpoint's lambda.engine decides otherwise (and a
// STAP start, where an engine is refused, stays valid).
func TestStartRequestEngine(t *testing.T) {
	for _, c := range []struct {
		engine, want string
	}{
		{"", `{"traceT":"STAP","traceId":3,"lasting":60}`},
		{"bpftrace", `{"traceT":"STAP","traceId":3,"lasting":60,"engine":"bpftrace"}`},
		{"native", `{"traceT":"STAP","traceId":3,"lasting":60,"engine":"native"}`},
	} {
		b, err := json.Marshal(StartRequest{TraceT: "STAP", TraceID: 3, Lasting: 60, Engine: c.engine})
		if err != nil || string(b) != c.want {
			t.Errorf("engine %q: %s %v; want %s", c.engine, b, err, c.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		group string
		args  []string
		want  error
		out   string
	}{
		{"traces", nil, ErrUsage, "Usage: lambda-endpoint traces COMMAND"},
		{"traces", []string{"--help"}, flag.ErrHelp, "Commands:"},
		{"traces", []string{"help", "start"}, flag.ErrHelp, "--lasting"},
		{"traces", []string{"start", "--help"}, flag.ErrHelp, "--lasting"},
		{"traces", []string{"start", "--help"}, flag.ErrHelp, "-engine string\n    \twhat runs a BPF trace: bpftrace or native"},
		{"traces", []string{"stop"}, ErrUsage, `unknown command "stop"`},
		{"traces", []string{"ls"}, ErrUsage, "--config is required"},
		{"templates", []string{"add", "--bogus"}, ErrUsage, "lambda-endpoint templates add: unknown flag --bogus\nRun \"lambda-endpoint templates add --help\" for its flags.\n"},
		{"traces", []string{"start", "--lasting"}, ErrUsage, "lambda-endpoint traces start: flag needs an argument: -lasting\n"},
		{"traces", []string{"history", "--help"}, flag.ErrHelp, "-state string"},
		{"traces", []string{"describe", "--help"}, flag.ErrHelp, `"no run at PATH"`},
		{"templates", []string{"rm", "--help"}, flag.ErrHelp, "Removes templates"},
	} {
		var out, errOut bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errOut}
		var err error
		if c.group == "traces" {
			err = Traces(context.Background(), c.args, env)
		} else {
			err = Templates(context.Background(), c.args, env)
		}
		if !errors.Is(err, c.want) || !strings.Contains(out.String()+errOut.String(), c.out) {
			t.Errorf("%s %q: %v, output %q; want %v and %q", c.group, c.args, err, out.String()+errOut.String(), c.want, c.out)
		}
	}
}

// TestSuggestions: an unknown flag or command is answered with the
// closest one, if one is close.
func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		group string
		args  []string
		want  string // the first line on stderr
	}{
		{"templates", []string{"add", "--proces", "/bin/bash"}, "lambda-endpoint templates add: unknown flag --proces: did you mean --process?"},
		{"templates", []string{"add", "--funtions", "f"}, "lambda-endpoint templates add: unknown flag --funtions: did you mean --functions?"},
		{"traces", []string{"start", "--lastin", "5", "1"}, "lambda-endpoint traces start: unknown flag --lastin: did you mean --lasting?"},
		{"traces", []string{"start", "1", "--wacth"}, "lambda-endpoint traces start: unknown flag --wacth: did you mean --watch?"},
		{"traces", []string{"start", "-engnie=native", "1"}, "lambda-endpoint traces start: unknown flag --engnie: did you mean --engine?"},
		{"traces", []string{"start", "--TYPE", "STAP", "1"}, "lambda-endpoint traces start: unknown flag --TYPE: did you mean --type?"},
		{"traces", []string{"start", "--templat", "1"}, "lambda-endpoint traces start: unknown flag --templat"},
		{"traces", []string{"ls", "--jsn"}, "lambda-endpoint traces ls: unknown flag --jsn: did you mean --json?"},
		{"traces", []string{"ls", "--endp"}, "lambda-endpoint traces ls: unknown flag --endp: did you mean --endpoint?"},
		{"traces", []string{"ls", "--cs", "x.pem"}, "lambda-endpoint traces ls: unknown flag --cs: did you mean --ca?"},
		{"traces", []string{"ls", "--x"}, "lambda-endpoint traces ls: unknown flag --x"},
		{"traces", []string{"history", "--limt", "5"}, "lambda-endpoint traces history: unknown flag --limt: did you mean --limit?"},
		{"traces", []string{"history", "--sate", "finished"}, "lambda-endpoint traces history: unknown flag --sate: did you mean --state?"},
		{"traces", []string{"histroy"}, `lambda-endpoint traces: unknown command "histroy": did you mean history?`},
		{"traces", []string{"stat"}, `lambda-endpoint traces: unknown command "stat": did you mean start?`},
		{"traces", []string{"describ"}, `lambda-endpoint traces: unknown command "describ": did you mean describe?`},
		{"traces", []string{"frobnicate"}, `lambda-endpoint traces: unknown command "frobnicate"`},
		{"templates", []string{"remove"}, `lambda-endpoint templates: unknown command "remove"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := Env{Stdout: &out, Stderr: &errOut}
			var err error
			if c.group == "traces" {
				err = Traces(context.Background(), c.args, env)
			} else {
				err = Templates(context.Background(), c.args, env)
			}
			first, _, _ := strings.Cut(errOut.String(), "\n")
			if err != ErrUsage || first != c.want {
				t.Errorf("%v, stderr %q; want %v, first line %q", err, errOut.String(), ErrUsage, c.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	names := []string{"ca", "config", "endpoint", "engine", "interval", "json", "lasting", "mode", "type", "watch"}
	for _, c := range []struct{ typed, want string }{
		{"config", "config"}, {"confg", "config"}, {"cnofig", "config"}, {"CONFIG", "config"},
		{"end", "endpoint"}, // the only flag it begins
		{"en", ""},          // too short a prefix, and two flags begin it
		{"e", ""}, {"c", ""}, {"cb", "ca"}, {"typo", "type"}, {"mod", "mode"}, {"watched", "watch"},
		{"interva", "interval"}, {"bogus", ""}, {"", ""}, {strings.Repeat("x", 100), ""},
	} {
		if got := closest(c.typed, names); got != c.want {
			t.Errorf("closest(%q) = %q, want %q", c.typed, got, c.want)
		}
	}
}

func intp(n int) *int { return &n }

func strp(s string) *string { return &s }

// TestWatcherOutcome: a watched trace that is gone is reported with how
// it ended, and one that did not end well is counted as failed.
func TestWatcherOutcome(t *testing.T) {
	finished := func(reason string, code *int, stderr *string) Run {
		return Run{FilePath: "/tmp/a.trace", State: stateFinished, Reason: reason, Code: code, StderrTail: stderr}
	}
	a := running("running", 100, 0, 0)
	cases := []struct {
		name   string
		run    Run
		found  bool
		json   bool
		want   string // what is printed once the trace is gone
		failed string // the error, "" if none
	}{
		{"completed", finished("completed", intp(0), strp("Attaching 2 probes...\n")), true, false,
			"/tmp/a.trace: delivered: completed, exit code 0\nstderr:\n  Attaching 2 probes...\n", ""},
		{"killed", finished("killed", intp(130), strp("")), true, false, "/tmp/a.trace: delivered: killed, exit code 130\n", ""},
		{"timed out", finished("timed-out", intp(137), nil), true, false, "/tmp/a.trace: delivered: timed-out, exit code 137\n", ""},
		{"failed", finished("failed", intp(1), strp("semantic error\n  at line 3\n")), true, false,
			"/tmp/a.trace: ended: failed, exit code 1\nstderr:\n  semantic error\n    at line 3\n", "trace /tmp/a.trace ended: failed, exit code 1"},
		{"failed to start", finished("failed-to-start", nil, strp("exec: no such file\n")), true, false,
			"/tmp/a.trace: ended: failed-to-start, no exit code\nstderr:\n  exec: no such file\n", "trace /tmp/a.trace ended: failed-to-start, no exit code"},
		{"long stderr", finished("failed", intp(1), strp(strings.Repeat("noise\n", 30)+"the error\n")), true, false,
			"/tmp/a.trace: ended: failed, exit code 1\nstderr (last 20 of 31 lines):\n" + strings.Repeat("  noise\n", 19) + "  the error\n", "trace /tmp/a.trace ended: failed, exit code 1"},
		{"interrupted", Run{FilePath: "/tmp/a.trace", State: stateInterrupted, Reason: "interrupted"}, true, false,
			"/tmp/a.trace: ended: interrupted, no exit code\n", "trace /tmp/a.trace ended: interrupted, no exit code"},
		{"no history", Run{}, false, false, "/tmp/a.trace: delivered\n", ""},
		{"history without a reason yet", Run{FilePath: "/tmp/a.trace", State: "delivering"}, true, false, "/tmp/a.trace: delivered\n", ""},
		{"json failed", finished("failed", intp(1), strp("oops\n")), true, true,
			`{"filePath":"/tmp/a.trace","state":"ended","reason":"failed","code":1,"stderrTail":"oops\n"}` + "\n", "trace /tmp/a.trace ended: failed, exit code 1"},
		{"json completed", finished("completed", intp(0), nil), true, true,
			`{"filePath":"/tmp/a.trace","state":"delivered","reason":"completed","code":0}` + "\n", ""},
		{"json no history", Run{}, false, true, `{"filePath":"/tmp/a.trace","state":"delivered"}` + "\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			var asked []string
			w := &watcher{out: &b, json: c.json, last: map[string]string{}, reported: map[string]bool{},
				outcome: func(p string) (Run, lookup) {
					asked = append(asked, p)
					if c.found {
						return c.run, lookupFound
					}
					return c.run, lookupUnknown
				}}
			w.show([]Running{a}, nil, t0)
			b.Reset()
			w.show(nil, nil, t0)
			w.show(nil, nil, t0) // reported once
			if b.String() != c.want {
				t.Errorf("\n got %q\nwant %q", b.String(), c.want)
			}
			if err := errors.Join(w.failed...); fmt.Sprint(err) != c.failed && !(err == nil && c.failed == "") {
				t.Errorf("failed: %v; want %q", err, c.failed)
			}
			if len(asked) != 1 || asked[0] != "/tmp/a.trace" {
				t.Errorf("outcome asked for %q", asked)
			}
		})
	}
	// A watched path never listed that the history knows is reported with
	// its outcome; one it does not know is an error; without an answer
	// from the history it is only not running.
	var b bytes.Buffer
	w := &watcher{out: &b, last: map[string]string{}, reported: map[string]bool{}, outcome: func(p string) (Run, lookup) {
		switch p {
		case "/tmp/a.trace":
			return finished("completed", intp(0), nil), lookupFound
		case "/tmp/typo.trace":
			return Run{}, lookupNone
		}
		return Run{}, lookupUnknown
	}}
	w.show(nil, []string{"/tmp/a.trace", "/tmp/typo.trace", "/tmp/unasked.trace"}, t0)
	if want := "/tmp/a.trace: delivered: completed, exit code 0\n/tmp/typo.trace: no run at this path\n/tmp/unasked.trace: not running (or already delivered)\n"; b.String() != want {
		t.Errorf("\n got %q\nwant %q", b.String(), want)
	}
	if err := errors.Join(w.failed...); fmt.Sprint(err) != "no run at /tmp/typo.trace" {
		t.Errorf("failed: %v; want no run at /tmp/typo.trace", err)
	}
}

func TestWriteHistory(t *testing.T) {
	fin := t0.Add(95 * time.Second)
	runs := []Run{
		{TemplateInfo: TemplateInfo{TraceType: "STAP"}, FilePath: "/tmp/b.trace", TraceNo: 5, Thread: 8, Mode: "events", StartedAt: t0,
			Lasting: 60, State: "finished", Reason: "failed", Code: intp(1), BytesRead: 0, FinishedAt: &fin},
		{TemplateInfo: TemplateInfo{TraceType: "BPF"}, FilePath: "/tmp/a.trace", TraceNo: 3, Thread: 7, Mode: "calls", StartedAt: t0,
			Lasting: 7200, State: "running", BytesRead: 3 << 20, ChunksAcknowledged: 60},
	}
	var b bytes.Buffer
	if err := writeHistory(&b, runs, t0.Add(3723*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `THREAD  TEMPLATE  TYPE  MODE    STATE     REASON  CODE  READ     ACKED      STARTED               RAN      PATH
8       5         STAP  events  finished  failed  1     0 B      0 chunks   2026-12-01T12:00:00Z  1:35     /tmp/b.trace
7       3         BPF   calls   running   -       -     3.0 MiB  60 chunks  2026-12-01T12:00:00Z  1:02:03  /tmp/a.trace
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteRun(t *testing.T) {
	fin := t0.Add(2 * time.Second)
	r := Run{TemplateInfo: TemplateInfo{Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"}, Environment: []string{"SYSTEMTAP_FAKE_MODE"},
		Value: []string{"exit 1"}, Options: []string{}, TraceType: "STAP"}, FilePath: "/tmp/b.trace", TraceNo: 5, Thread: 8, Mode: "events",
		StartedAt: t0, Lasting: 60, State: "finished", Reason: "failed", Code: intp(1), FinishedAt: &fin,
		SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", StderrTail: strp("faketracer: exiting with code 1\n")}
	head := `path:          /tmp/b.trace
thread:        8
template:      5 (STAP)
process:       /bin/bash
functions:     xmalloc, xfree
environment:   SYSTEMTAP_FAKE_MODE=exit 1
options:       -
mode:          events
engine:        -
started:       2026-12-01T12:00:00Z
lasting:       60 s
finished:      2026-12-01T12:00:02Z (ran 0:02)
state:         finished
reason:        failed
exit code:     1
read:          0 B
acknowledged:  0 chunks
sha256:        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`
	running := r
	running.State, running.Reason, running.Code, running.FinishedAt, running.SHA256, running.StderrTail = "running", "", nil, nil, "", nil
	for _, c := range []struct {
		name string
		r    Run
		want string
	}{
		{"finished", r, head + "stderr:\n  faketracer: exiting with code 1\n"},
		{"running", running, strings.NewReplacer("2026-12-01T12:00:02Z (ran 0:02)", "-", "state:         finished", "state:         running",
			"reason:        failed", "reason:        -", "exit code:     1", "exit code:     -",
			"sha256:        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256:        -").Replace(head) +
			"stderr:        unknown (the endpoint keeps it for the runs it saw finish since it started)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeRun(&b, c.r, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), c.want)
			}
		})
	}
}
