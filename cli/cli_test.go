package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
		{"templates", []string{"add", "--bogus"}, ErrUsage, "flag provided but not defined: -bogus"},
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
