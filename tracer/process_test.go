//go:build linux

package tracer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		mode     string
		code     int
		signaled bool
		stderr   string
	}{
		{"exit 0", 0, false, "exiting with code 0"},
		{"exit 3", 3, false, "exiting with code 3"},
		{"raise 15", 128 + 15, true, ""},
		{"raise 9", 128 + 9, true, ""},
		{"lines 3 10ms", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p := startFake(t, tt.mode, nil)
			readAll(t, p, p.Stdout())
			got := waitExit(t, p)
			if got.Code != tt.code || got.Signaled != tt.signaled || got.Err != nil {
				t.Errorf("exit = %+v, want code %d signaled %v", got, tt.code, tt.signaled)
			}
			if !strings.Contains(got.Stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", got.Stderr, tt.stderr)
			}
		})
	}
}

func TestStderrTailBoundedUnderFlood(t *testing.T) {
	const total = 100 << 20
	for _, limit := range []int{0, 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			p := startFake(t, fmt.Sprintf("stderrflood %d", total), func(c *Command) { c.StderrLimit = limit })
			readAll(t, p, p.Stdout())
			got := waitExit(t, p)
			want := limit
			if want == 0 {
				want = DefaultStderrLimit
			}
			if got.Code != 0 {
				t.Fatalf("exit = %+v", got)
			}
			if len(got.Stderr) > want {
				t.Errorf("len(stderr) = %d, want <= %d", len(got.Stderr), want)
			}
			note, tail, ok := strings.Cut(got.Stderr, "\n")
			body, found := strings.CutSuffix(tail, "END-OF-STDERR\n")
			if !found || strings.Trim(body, "e\n") != "" {
				t.Errorf("stderr is not the last bytes written: ...%q", got.Stderr[max(0, len(got.Stderr)-100):])
			}
			var dropped int
			if _, err := fmt.Sscanf(note, "…(%d bytes dropped)", &dropped); err != nil || !ok {
				t.Fatalf("stderr does not start with the dropped note: %q (%v)", note, err)
			}
			if dropped+len(tail) != total {
				t.Errorf("dropped %d + kept %d != written %d", dropped, len(tail), total)
			}
		})
	}
}

func TestStdoutFloodFullyRead(t *testing.T) {
	const total = 100 << 20
	p := startFake(t, fmt.Sprintf("flood %d", total), nil)
	var bytesRead, lines int
	sc := bufio.NewScanner(p.Stdout())
	for sc.Scan() {
		bytesRead += len(sc.Bytes()) + 1
		lines++
		if lines%1000 == 1 && !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %q", lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading stdout: %v", err)
	}
	got := waitExit(t, p)
	if got.Code != 0 {
		t.Fatalf("exit = %+v", got)
	}
	want := fmt.Sprintf("flood: wrote %d bytes\n", bytesRead)
	if got.Stderr != want || bytesRead < total {
		t.Errorf("read %d bytes in %d lines; tracer says %q", bytesRead, lines, got.Stderr)
	}
}

func TestStopDeliversSIGINT(t *testing.T) {
	for _, parent := range []string{"", "-"} {
		t.Run("cgroup parent "+strconv.Quote(parent), func(t *testing.T) {
			p := startFake(t, "sigint-summary", func(c *Command) {
				if parent == "-" {
					c.CgroupParent = "-"
				}
			})
			sc := bufio.NewScanner(p.Stdout())
			readUntil(t, sc, "ready")
			p.Stop(patience)
			p.Stop(patience) // idempotent
			readUntil(t, sc, "summary")
			readAll(t, p, p.Stdout())
			got := waitExit(t, p)
			if got.Code != 0 || got.Signaled {
				t.Errorf("exit = %+v, want 0 from the tracer's own SIGINT handling", got)
			}
			p.Stop(time.Second) // no-ops after exit
			p.Kill()
		})
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	p := startFake(t, "ignoreint", nil)
	sc := bufio.NewScanner(p.Stdout())
	readUntil(t, sc, "ready")
	p.Stop(200 * time.Millisecond)
	readAll(t, p, p.Stdout())
	got := waitExit(t, p)
	if got.Code != 128+9 || !got.Signaled {
		t.Errorf("exit = %+v, want SIGKILL (137)", got)
	}
}

func TestKillReachesEveryProcess(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		contained bool
	}{
		{"cgroup", "fork 3", true},
		{"cgroup, children in own sessions", "fork 3 setsid", true},
		{"process group", "fork 3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := "-"
			if tt.contained {
				parent = testCgroupParent(t)
				requireCgroup(t, parent)
			}
			p := startFake(t, tt.mode, func(c *Command) { c.CgroupParent = parent })
			if p.Contained() != tt.contained {
				t.Fatalf("Contained() = %v (%v), want %v", p.Contained(), p.ContainErr(), tt.contained)
			}
			sc := bufio.NewScanner(p.Stdout())
			ids := identities(t, append(childPids(readUntil(t, sc, "ready")), p.PID()))
			if len(ids) != 4 {
				t.Fatalf("got %d processes, want tracer + 3 children", len(ids))
			}
			p.Kill()
			p.Kill() // idempotent
			readAll(t, p, p.Stdout())
			got := waitExit(t, p)
			if got.Code != 128+9 || !got.Signaled {
				t.Errorf("exit = %+v, want SIGKILL", got)
			}
			waitGone(t, ids)
		})
	}
}

func TestLeaderExitKillsLeftovers(t *testing.T) {
	for _, parent := range []string{"", "-"} {
		t.Run("cgroup parent "+strconv.Quote(parent), func(t *testing.T) {
			p := startFake(t, "fork 2", func(c *Command) {
				if parent == "-" {
					c.CgroupParent = "-"
				}
			})
			sc := bufio.NewScanner(p.Stdout())
			ids := identities(t, childPids(readUntil(t, sc, "ready")))
			// Only the tracer dies; its children hold stdout open.
			if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			readAll(t, p, p.Stdout())
			got := waitExit(t, p)
			if got.Code != 128+15 {
				t.Errorf("exit = %+v, want SIGTERM", got)
			}
			waitGone(t, ids)
		})
	}
}

func TestEnvironmentIsExactlyBasePlusTemplate(t *testing.T) {
	t.Setenv("LAMBDA_SECRET", "do-not-leak")
	t.Setenv("BPFTRACE_FROM_ENDPOINT", "do-not-leak")
	env := []string{"BPFTRACE_STRLEN=200", "BPFTRACE_NOTE=a b=c"}
	opts := []string{"-B", "line", "--no-warnings"}
	p := startFake(t, "echoenv", func(c *Command) { c.Env, c.Options = env, opts })
	out := readAll(t, p, p.Stdout())
	if got := waitExit(t, p); got.Code != 0 {
		t.Fatalf("exit = %+v", got)
	}
	var gotArgs, gotEnv []string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var m struct {
			Args []string `json:"args"`
			Env  *string  `json:"env"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if m.Env != nil {
			gotEnv = append(gotEnv, *m.Env)
		} else {
			gotArgs = m.Args
		}
	}
	if want := append(BaseEnv(), env...); !reflect.DeepEqual(gotEnv, want) {
		t.Errorf("tracer env = %q, want %q", gotEnv, want)
	}
	if !reflect.DeepEqual(gotArgs, opts) {
		t.Errorf("tracer args after script = %q, want %q", gotArgs, opts)
	}
}

func TestStartTracerNotFound(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := testCgroupParent(t)
	for name, path := range map[string]string{
		"missing":        filepath.Join(dir, "missing"),
		"not executable": plain,
		"directory":      dir,
		"empty":          "",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Start(context.Background(), Command{Path: path, Script: "x", CgroupParent: parent, Name: "nf"})
			if !errors.Is(err, ErrTracerNotFound) {
				t.Fatalf("Start(%q) = %v, %v; want ErrTracerNotFound", path, p, err)
			}
			if _, err := os.Stat(filepath.Join(parent, "nf")); parent != "-" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup left behind: %v", err)
			}
		})
	}
}

func TestStartRefusesBadInput(t *testing.T) {
	tests := map[string]func(*Command){
		"canceled context": nil,
		"bad name":         func(c *Command) { c.Name = "../x" },
		"bad env":          func(c *Command) { c.Env = []string{"NOEQUALS"} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			if edit == nil {
				cancel()
			} else {
				defer cancel()
			}
			c := Command{Path: fakeTracer(t), Script: fakeScript(t, "exit 0"), CgroupParent: "-"}
			if edit != nil {
				edit(&c)
			}
			if p, err := Start(ctx, c); err == nil {
				p.Kill()
				t.Fatalf("Start succeeded")
			} else if edit == nil && !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
}

func TestCgroupLifecycle(t *testing.T) {
	parent := testCgroupParent(t)
	requireCgroup(t, parent)
	p := startFake(t, "sigint-summary", func(c *Command) { c.CgroupParent, c.Name = parent, "lifecycle" })
	want := filepath.Join(parent, "lifecycle")
	if !p.Contained() || p.CgroupDir() != want || p.ContainErr() != nil {
		t.Fatalf("Contained %v CgroupDir %q ContainErr %v; want cgroup %s", p.Contained(), p.CgroupDir(), p.ContainErr(), want)
	}
	sc := bufio.NewScanner(p.Stdout())
	readUntil(t, sc, "ready")
	procs, err := os.ReadFile(filepath.Join(want, "cgroup.procs"))
	if err != nil || !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(p.PID())) {
		t.Fatalf("cgroup.procs = %q (%v), want the tracer %d", procs, err, p.PID())
	}
	p.Stop(patience)
	readAll(t, p, p.Stdout())
	if got := waitExit(t, p); got.Code != 0 || got.CleanupErr != nil {
		t.Fatalf("exit = %+v", got)
	}
	if _, err := os.Stat(want); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s still there after exit: %v", want, err)
	}
}

func TestUncontainedFallback(t *testing.T) {
	tests := map[string]struct {
		parent  string
		wantErr bool
	}{
		"disabled":          {"-", false},
		"not a cgroup2 dir": {t.TempDir(), true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := startFake(t, "exit 0", func(c *Command) { c.CgroupParent = tt.parent })
			readAll(t, p, p.Stdout())
			if got := waitExit(t, p); got.Code != 0 {
				t.Errorf("exit = %+v", got)
			}
			if p.Contained() || (p.ContainErr() != nil) != tt.wantErr {
				t.Errorf("Contained %v ContainErr %v, want uncontained, error %v", p.Contained(), p.ContainErr(), tt.wantErr)
			}
		})
	}
}

func TestCleanupKillsForgottenTracer(t *testing.T) {
	parent := testCgroupParent(t)
	requireCgroup(t, parent)
	p := startFake(t, "fork 3 setsid", func(c *Command) { c.CgroupParent = parent })
	sc := bufio.NewScanner(p.Stdout())
	ids := identities(t, append(childPids(readUntil(t, sc, "ready")), p.PID()))
	// The Process is forgotten, as after an endpoint crash.
	if err := Cleanup(parent); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	waitGone(t, ids)
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("cgroup %s left under %s", e.Name(), parent)
		}
	}
	readAll(t, p, p.Stdout())
	if got := waitExit(t, p); got.Code != 128+9 || got.CleanupErr != nil {
		t.Errorf("forgotten tracer's exit = %+v, want SIGKILL", got)
	}
}

// TestParentDeath kills an endpoint stand-in (this test binary, re-executed)
// while its tracer runs: the tracer dies with it, its children stay until
// Cleanup.
func TestParentDeath(t *testing.T) {
	parent := testCgroupParent(t)
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(),
		helperEnv+"=1",
		helperFakeEnv+"="+fakeTracer(t),
		helperScriptEnv+"="+fakeScript(t, "fork 2"),
		helperParentEnv+"="+parent,
	)
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	lines := readUntil(t, bufio.NewScanner(out), "ready")
	tracerPid, ok := lines[0]["tracer"].(float64)
	if !ok {
		t.Fatalf("helper said %v; stderr %s", lines, stderr.String())
	}
	tracer := identities(t, []int{int(tracerPid)})
	children := identities(t, childPids(lines))
	if len(children) != 2 {
		t.Fatalf("helper said %v", lines)
	}
	t.Cleanup(func() {
		for pid := range children {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitGone(t, tracer)
	if left := alive(children); len(left) != 2 {
		t.Fatalf("children alive after the tracer died: %v, want both (only Cleanup kills them)", left)
	}
	requireCgroup(t, parent)
	if err := Cleanup(parent); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	waitGone(t, children)
}

func TestNoGoroutineLeak(t *testing.T) {
	fakeTracer(t)
	parent := testCgroupParent(t)
	before := runtime.NumGoroutine()
	for i := range 12 {
		mode := []string{"exit 0", "lines 3 1ms", "fork 2", "sigint-summary"}[i%4]
		p := startFake(t, mode, func(c *Command) { c.CgroupParent = parent })
		if mode == "fork 2" || mode == "sigint-summary" {
			readUntil(t, bufio.NewScanner(p.Stdout()), "ready")
			if mode == "fork 2" {
				p.Kill()
			} else {
				p.Stop(patience)
			}
		}
		if i%3 == 0 {
			_ = p.CloseStdout() // a caller that stops reading early
		} else {
			readAll(t, p, p.Stdout())
		}
		waitExit(t, p)
	}
	deadline := time.Now().Add(patience)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var b bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSudo runs the real sudo (as root it asks for no password, so the
// password line stays on the tracer's stdin, where the fake can show it) with
// a faked non-root euid.
func TestSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root to run sudo without a password")
	}
	if _, err := os.Stat(DefaultSudoPath); err != nil {
		t.Skipf("SKIPPING: no %s: %v", DefaultSudoPath, err)
	}
	t.Setenv("LAMBDA_SECRET", "do-not-leak")
	tests := []struct {
		mode string
		want []string
	}{
		{"stdin", []string{`{"stdin":"pass word\n"}`}},
		{"echoenv", []string{`{"args":["-v"]}`, `{"env":"` + basePath + `"}`, `{"env":"LANG=C"}`, `{"env":"BPFTRACE_STRLEN=64"}`}},
		{"sigint-summary", []string{`{"ready":true}`, `{"summary":true}`}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c := Command{
				Path:         fakeTracer(t),
				Script:       fakeScript(t, tt.mode),
				Options:      []string{"-v"},
				Env:          []string{"BPFTRACE_STRLEN=64"},
				RootPassword: "pass word",
				CgroupParent: testCgroupParent(t),
			}
			p, err := start(context.Background(), c, 1000)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { p.Kill(); <-p.Done() }()
			var out []byte
			if tt.mode == "sigint-summary" {
				// Stop signals sudo alone, which relays SIGINT to the tracer.
				sc := bufio.NewScanner(p.Stdout())
				readUntil(t, sc, "ready")
				p.Stop(patience)
				out = []byte(sc.Text() + "\n")
			}
			out = append(out, readAll(t, p, p.Stdout())...)
			got := waitExit(t, p)
			if got.Code != 0 {
				t.Fatalf("exit = %+v", got)
			}
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); !reflect.DeepEqual(lines, tt.want) {
				t.Errorf("stdout = %q, want %q", lines, tt.want)
			}
		})
	}
}

// requireBpftrace returns bpftrace's path, or skips (fails in CI) when this
// machine cannot run it.
func requireBpftrace(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("bpftrace")
	if err == nil && os.Geteuid() != 0 {
		err = errors.New("not root")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("bpftrace unusable in CI: %v", err)
		}
		t.Skipf("SKIPPING: bpftrace unusable: %v", err)
	}
	return path
}

// jsonLines returns the stdout lines that are JSON objects (bpftrace also
// prints "Attaching N probes..." and blank lines).
func jsonLines(t *testing.T, out []byte) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "{") {
			if !json.Valid([]byte(l)) {
				t.Errorf("bad JSON line %q", l)
			}
			lines = append(lines, l)
		}
	}
	return lines
}

// waitEpoll polls until process pid sleeps in epoll_wait, or gives up
// quietly after a while when the kernel hides wchan.
func waitEpoll(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if w, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid)); err == nil && strings.Contains(string(w), "epoll_wait") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("bpftrace %d never seen in epoll_wait; stopping anyway", pid)
}

func TestBpftraceRuns(t *testing.T) {
	path := requireBpftrace(t)
	script := filepath.Join(t.TempDir(), "tick.bt")
	src := `interval:ms:100 { printf("{\"tick\":1}\n"); } interval:s:1 { exit(); }`
	if err := os.WriteFile(script, []byte(src+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), Command{Path: path, Script: script, CgroupParent: testCgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); <-p.Done() }()
	out := readAll(t, p, p.Stdout())
	got := waitExit(t, p)
	if got.Code != 0 {
		t.Fatalf("exit = %+v", got)
	}
	ticks := jsonLines(t, out)
	if len(ticks) == 0 || ticks[0] != `{"tick":1}` {
		t.Errorf("stdout %q has no tick lines", out)
	}
}

func TestBpftraceStops(t *testing.T) {
	path := requireBpftrace(t)
	script := filepath.Join(t.TempDir(), "long.bt")
	src := `BEGIN { printf("{\"ready\":1}\n"); } interval:s:3600 { exit(); } END { printf("{\"end\":1}\n"); }`
	if err := os.WriteFile(script, []byte(src+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), Command{Path: path, Script: script, CgroupParent: testCgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); <-p.Done() }()
	sc := bufio.NewScanner(p.Stdout())
	for !strings.Contains(sc.Text(), "ready") {
		if !sc.Scan() {
			t.Fatalf("stdout ended before the BEGIN line: %v", sc.Err())
		}
	}
	// bpftrace 0.17 misses a SIGINT that comes while it is still handling
	// the BEGIN event (see Stop): wait until it waits for events.
	waitEpoll(t, p.PID())
	p.Stop(patience)
	var rest bytes.Buffer
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	got := waitExit(t, p)
	if got.Code != 0 || got.Signaled {
		t.Errorf("exit = %+v, want 0 after SIGINT", got)
	}
	if lines := jsonLines(t, rest.Bytes()); !slices.Contains(lines, `{"end":1}`) {
		t.Errorf("stdout after Stop = %q, want the END probe's line", rest.String())
	}
	_, _ = io.Copy(io.Discard, p.Stdout())
}

// BenchmarkStartWait measures launching a tracer that exits at once, in a
// cgroup of its own, through to Done.
func BenchmarkStartWait(b *testing.B) {
	c := Command{Path: fakeTracer(b), Script: fakeScript(b, "exit 0"), CgroupParent: testCgroupParent(b)}
	for i := 0; b.Loop(); i++ {
		c.Name = "bench-" + strconv.Itoa(i)
		p, err := Start(context.Background(), c)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, p.Stdout())
		if got := p.Wait(); got.Code != 0 {
			b.Fatalf("exit = %+v", got)
		}
	}
}

// TestStdoutReadDeadline checks that a reader can wake up while the tracer
// is quiet and then go on reading to EOF: the pipe survives the deadline.
func TestStdoutReadDeadline(t *testing.T) {
	p := startFake(t, "lines 2 300ms", nil)
	out, ok := p.Stdout().(interface{ SetReadDeadline(time.Time) error })
	if !ok {
		t.Fatal("Stdout has no SetReadDeadline")
	}
	var got []byte
	buf := make([]byte, 4096)
	timeouts := 0
	for {
		if err := out.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := p.Stdout().Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			timeouts++
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if timeouts == 0 {
		t.Error("no read hit its deadline although the tracer was quiet for 300ms")
	}
	if want := "{\"seq\":0}\n{\"seq\":1}\n"; string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
	if e := waitExit(t, p); e.Code != 0 {
		t.Errorf("exit %+v", e)
	}
}

// TestStdoutPipeGrown checks that the tracer's stdout pipe holds
// StdoutPipeSize (the kernel's default pipe-max-size, allowed to anyone)
// and that a tracer can write that much without anybody reading.
func TestStdoutPipeGrown(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		t.Fatal(err)
	}
	if max, _ := strconv.Atoi(strings.TrimSpace(string(b))); max < StdoutPipeSize && os.Geteuid() != 0 {
		t.Skipf("fs.pipe-max-size is %d: an unprivileged process cannot have %d", max, StdoutPipeSize)
	}
	// flood rounds up to whole 1024-byte lines; 1000 KiB fits.
	p := startFake(t, fmt.Sprintf("flood %d", StdoutPipeSize-24<<10), nil)
	if got := p.StdoutCapacity(); got != StdoutPipeSize {
		t.Errorf("StdoutCapacity() = %d, want %d", got, StdoutPipeSize)
	}
	// The tracer exits before anything is read: it never blocked.
	select {
	case <-p.Done():
	case <-time.After(time.Minute):
		t.Fatal("the tracer blocked writing less than its pipe holds")
	}
	n, err := io.Copy(io.Discard, p.Stdout())
	if err != nil || n != StdoutPipeSize-24<<10 {
		t.Errorf("read %d bytes (%v), want %d", n, err, StdoutPipeSize-24<<10)
	}
}
