package actors

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

const (
	testUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	testSecret = "abc123456"
)

var (
	fakeTracer string // the fake tracer binary, built once
	header     string
	setupErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actors-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeTracer = filepath.Join(dir, "faketracer")
	if out, err := exec.Command("go", "build", "-o", fakeTracer, "../tracer/internal/faketracer").CombinedOutput(); err != nil {
		setupErr = fmt.Errorf("building the fake tracer: %v\n%s", err, out)
	}
	if setupErr == nil {
		header, setupErr = auth.Header(testUUID, testSecret)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTestRuntime starts a Runtime whose BPF tracer is the fake tracer,
// delivering to a test platform.
func newTestRuntime(t *testing.T, mod func(*Options)) (*Runtime, *platformtest.Platform, *testsupport.SyncBuffer) {
	t.Helper()
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (CI=true)")
		}
		t.Skip("SKIPPING: this test needs root")
	}
	p := platformtest.New(t, testUUID, testSecret)
	t.Cleanup(func() { p.AssertNoViolations(t) })
	client, err := platform.New(p.URL(), header, platform.Options{RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testsupport.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger.With("lib", "protoactor") }))
	dir := t.TempDir()
	o := Options{
		Submitter: client, Logger: logger, BPFPath: fakeTracer, StapPath: fakeTracer,
		TraceDir: filepath.Join(dir, "traces"), SpoolDir: filepath.Join(dir, "spool"),
		ChunkSize: 64, FlushInterval: 100 * time.Millisecond, KillGrace: time.Second,
	}
	o.Rules, _ = validate.RulesFrom([]string{"BPFTRACE_FAKE_MODE=any"}, nil, false) // the fake tracer's mode
	if err := os.MkdirAll(o.TraceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&o)
	}
	rt, err := New(system, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		system.Shutdown()
		if t.Failed() {
			t.Logf("runtime log:\n%s", logs.String())
		}
	})
	return rt, p, logs
}

func fakeTemplate(mode string) messages.Template {
	return messages.Template{ID: 7, Info: messages.TemplateInfo{
		Process: "/bin/bash", Functions: []string{"xmalloc"},
		Environment: []string{"BPFTRACE_FAKE_MODE"}, Value: []string{mode},
		Options: []string{}, TraceType: messages.BPF,
	}}
}

// faultAt is a test hook that panics once, at the n-th time match is true.
type faultAt struct {
	mu    sync.Mutex
	n     int
	fired bool
}

func (f *faultAt) hit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired {
		return false
	}
	f.n--
	if f.n > 0 {
		return false
	}
	f.fired = true
	return true
}

func (f *faultAt) wasFired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// seqLines is what the fake tracer's "lines N" mode prints.
func seqLines(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "{\"seq\":%d}\n", i)
	}
	return b.Bytes()
}

// TestSupervision injects one panic mid-trace into each part of the
// runtime: the trace actor, the registry, and each worker of the trace
// actor. Each part is restarted from durable state (the spool, the staging
// file, the tracer process), and the proof is what the platform holds: the
// exact bytes the tracer wrote, in contiguous chunks (platformtest reports
// a gap or a resent chunk with different bytes as a violation), and a
// finished message that counts them. A part that was not restarted would
// leave the trace unfinished.
func TestSupervision(t *testing.T) {
	const lines = 40
	tests := []struct {
		name string
		// receive is true for a panic in an actor's Receive on a message
		// matching match; otherwise the panic is at worker's checkpoint.
		receive bool
		match   func(msg interface{}) bool
		worker  string
		n       int
	}{
		{name: "trace actor", receive: true, n: 3, match: func(m interface{}) bool { _, ok := m.(*chunkAcked); return ok }},
		{name: "trace actor on exit", receive: true, n: 1, match: func(m interface{}) bool { _, ok := m.(*tracerExited); return ok }},
		{name: "registry", receive: true, n: 5, match: func(m interface{}) bool { _, ok := m.(*traceStatus); return ok }},
		{name: "launcher", worker: wLauncher, n: 1},
		{name: "pump", worker: wPump, n: 5},
		{name: "waiter", worker: wWaiter, n: 1},
		{name: "sender", worker: wSender, n: 3},
		{name: "finisher", worker: wFinisher, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &faultAt{n: tt.n}
			hooks := &testHooks{}
			if tt.receive {
				hooks.onReceive = func(msg interface{}) {
					if tt.match(msg) && f.hit() {
						panic("injected fault in " + tt.name)
					}
				}
			} else {
				hooks.onCheckpoint = func(worker, path string) {
					if worker == tt.worker && f.hit() {
						panic("injected fault in " + tt.name)
					}
				}
			}
			rt, p, _ := newTestRuntime(t, func(o *Options) { o.hooks = hooks; o.CgroupParent = "-" })
			rec := deliverFake(t, rt, p, fmt.Sprintf("lines %d 10ms", lines), 60*time.Second)
			if want := seqLines(lines); !bytes.Equal(rec.Data, want) {
				t.Errorf("platform holds %q, want %q", rec.Data, want)
			}
			if fin := rec.Finished; fin.Code != 0 || fin.Reason != messages.ReasonCompleted ||
				fin.Chunks != rec.ChunkCount || fin.Bytes != int64(len(rec.Data)) || fin.SHA256 != rec.SHA256 {
				t.Errorf("finished %+v, platform got %d chunks %d bytes", fin, rec.ChunkCount, len(rec.Data))
			}
			// The registry still knows the trace until it is delivered,
			// then forgets it.
			waitFor(t, func() bool { all, err := rt.All(context.Background()); return err == nil && len(all) == 0 })
			if !f.wasFired() {
				t.Error("the fault was never injected")
			}
		})
	}
}

// TestRegistryRestartKeepsTraces: after the registry panics, a running
// trace is still known and can be killed, and the thread counter goes on.
func TestRegistryRestartKeepsTraces(t *testing.T) {
	type boom struct{}
	hooks := &testHooks{onReceive: func(msg interface{}) {
		if _, ok := msg.(*boom); ok {
			panic("injected fault in registry")
		}
	}}
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.hooks = hooks; o.CgroupParent = "-"; o.LastThread = 41 })
	ctx := context.Background()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("sigint-summary"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if s.Thread != 42 {
		t.Errorf("first thread %d, want 42 (LastThread 41)", s.Thread)
	}
	waitFor(t, func() bool { info, _, _ := rt.Running(ctx, s.FilePath); return info.BytesRead > 0 })
	rt.system.Root.Send(rt.registry, &boom{})
	info, ok, err := rt.Running(ctx, s.FilePath)
	if err != nil || !ok || info.State != messages.StateRunning || info.PID == 0 {
		t.Fatalf("after a registry restart Running = %+v, %v, %v", info, ok, err)
	}
	s2, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("exit 0"), Lasting: time.Minute})
	if err != nil || s2.Thread != 43 {
		t.Fatalf("second start = %+v, %v; want thread 43", s2, err)
	}
	if found, err := rt.Kill(ctx, s.FilePath); err != nil || !found {
		t.Fatalf("Kill = %v, %v", found, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec, err := p.WaitFinished(wctx, s.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Data) != "{\"ready\":true}\n{\"summary\":true}\n" || rec.Finished.Reason != messages.ReasonKilled {
		t.Errorf("platform holds %q, finished %+v", rec.Data, rec.Finished)
	}
}

// TestEndings checks the reasons and counts of the finished message.
func TestEndings(t *testing.T) {
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.CgroupParent = "-" })
	empty := sha256.Sum256(nil)
	tests := []struct {
		mode   string
		code   int
		reason string
		data   string
	}{
		{"exit 0", 0, messages.ReasonCompleted, ""},
		{"exit 1", 1, messages.ReasonFailed, ""},
		{"silent 10ms", 0, messages.ReasonCompleted, ""},
		{"lines 2 1ms", 0, messages.ReasonCompleted, "{\"seq\":0}\n{\"seq\":1}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(tt.mode), Lasting: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := p.WaitFinished(ctx, s.FilePath)
			if err != nil {
				t.Fatal(err)
			}
			f := rec.Finished
			if f.Code != tt.code || f.Reason != tt.reason || string(rec.Data) != tt.data {
				t.Errorf("finished %+v with %q", f, rec.Data)
			}
			if tt.data == "" && (f.Chunks != 0 || f.Bytes != 0 || f.SHA256 != hex.EncodeToString(empty[:])) {
				t.Errorf("an empty trace finished %+v; want chunks 0, bytes 0, sha256 of nothing", f)
			}
		})
	}
}

// TestStartFailsAfterAccept: a start whose spool cannot be created (the
// spool directory is not writable: a file stands where it should be) is
// accepted, and the platform still gets start and finished, failed-to-start.
func TestStartFailsAfterAccept(t *testing.T) {
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.CgroupParent = "-" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("exit 0"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitFinished(ctx, s.FilePath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { all, err := rt.All(ctx); return err == nil && len(all) == 0 })
	// Block the next trace's spool: replace the spool directory by a file.
	if err := os.RemoveAll(rt.opts.SpoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rt.opts.SpoolDir, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("lines 3 1ms"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := p.WaitFinished(ctx, s2.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	if f := rec.Finished; !rec.Started || f.Reason != messages.ReasonFailedToStart || f.Code != 127 ||
		!strings.Contains(f.Stderr, "creating spool") || f.Chunks != 0 || f.SHA256 != hex.EncodeToString(empty[:]) {
		t.Errorf("finished %+v (started %v)", f, rec.Started)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deliverFake starts a trace of the fake tracer in mode on rt and returns
// what p holds once its finished message arrived, failing the test after
// within.
func deliverFake(t *testing.T, rt *Runtime, p *platformtest.Platform, mode string, within time.Duration) platformtest.TraceRecord {
	t.Helper()
	ctx := context.Background()
	started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(mode), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	rec, err := p.WaitFinished(wctx, started.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestSubscribeAndKill checks that Kill reaches a running tracer and that
// subscribers hear about every finished trace.
func TestSubscribeAndKill(t *testing.T) {
	rt, _, _ := newTestRuntime(t, nil)
	ch, unsubscribe := rt.Subscribe(4)
	defer unsubscribe()
	ctx := context.Background()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("sigint-summary"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if found, err := rt.Kill(ctx, "/nope.trace"); err != nil || found {
		t.Errorf("Kill(unknown) = %v, %v", found, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, _, _ := rt.Running(ctx, s.FilePath)
		if info.BytesRead > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tracer never got ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if found, err := rt.Kill(ctx, s.FilePath); err != nil || !found {
		t.Fatalf("Kill = %v, %v", found, err)
	}
	select {
	case f := <-ch:
		if f.FilePath != s.FilePath || f.Reason != messages.ReasonKilled || f.Code != 0 || f.Thread != s.Thread {
			t.Errorf("finished %+v", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no finished notification")
	}
	if all, err := rt.All(ctx); err != nil || len(all) != 0 {
		t.Errorf("All after finish = %v, %v", all, err)
	}
}

// TestSlowRegistryTimesOut checks that a caller of a stalled registry gets
// ErrTimeout (the API's 503) instead of a hung request, and that the runtime
// answers again once the registry is free.
func TestSlowRegistryTimesOut(t *testing.T) {
	type stall struct{}
	release := make(chan struct{})
	hooks := &testHooks{onReceive: func(msg interface{}) {
		if _, ok := msg.(*stall); ok {
			<-release
		}
	}}
	rt, _, _ := newTestRuntime(t, func(o *Options) { o.Timeout = 200 * time.Millisecond; o.hooks = hooks })
	rt.system.Root.Send(rt.registry, &stall{})
	if _, err := rt.All(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("All on a stalled registry = %v, want ErrTimeout", err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := rt.All(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("registry still not answering: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEscapedChildHoldingStdout: without a cgroup, children in sessions of
// their own escape the kill and keep the tracer's stdout open. The trace
// must still end (stdout is closed after the kill grace) and deliver what
// was written.
func TestEscapedChildHoldingStdout(t *testing.T) {
	rt, p, _ := newTestRuntime(t, func(o *Options) { o.CgroupParent = "-" })
	ch, unsubscribe := rt.Subscribe(1)
	defer unsubscribe()
	ctx := context.Background()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("fork 2 setsid"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec, err := p.WaitFor(wctx, s.FilePath, func(r platformtest.TraceRecord) bool {
		return bytes.Contains(r.Data, []byte(`"ready"`))
	})
	if err != nil {
		t.Fatal(err)
	}
	var children []int
	sc := bufio.NewScanner(bytes.NewReader(rec.Data))
	for sc.Scan() {
		var l struct{ Child int }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Child > 0 {
			children = append(children, l.Child)
		}
	}
	t.Cleanup(func() {
		for _, pid := range children {
			syscall.Kill(pid, syscall.SIGKILL) // they escaped on purpose
		}
	})
	if len(children) != 2 {
		t.Fatalf("children %v", children)
	}
	if _, err := rt.Kill(ctx, s.FilePath); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-ch:
		if f.Reason != messages.ReasonKilled {
			t.Errorf("finished %+v", f)
		}
	case <-wctx.Done():
		t.Fatal("the trace never ended while escaped children held its stdout")
	}
	if got := p.Trace(s.FilePath); got.Finished == nil || !bytes.Contains(got.Data, []byte(`"ready"`)) {
		t.Errorf("platform record %+v", got.Finished)
	}
}

// TestTraceActorGivenUp: a trace actor that keeps panicking is stopped by
// its supervisor after 10 restarts in 10 s. The registry hears of it
// (Terminated) and forgets the trace instead of answering for a dead actor,
// the tracer is killed, and the spool stays on disk for the next start.
func TestTraceActorGivenUp(t *testing.T) {
	pids := make(chan int, 1)
	hooks := &testHooks{onReceive: func(msg interface{}) {
		switch m := msg.(type) {
		case *launched:
			if m.proc != nil {
				select { // a restarted actor sees launched again
				case pids <- m.proc.PID():
				default:
				}
			}
		case *chunkSpooled:
			panic("injected fault on every read")
		}
	}}
	rt, _, logs := newTestRuntime(t, func(o *Options) { o.hooks = hooks; o.CgroupParent = "-" })
	ctx := context.Background()
	s, err := rt.Start(ctx, StartRequest{Template: fakeTemplate("lines 1000 5ms"), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pid := <-pids
	waitFor(t, func() bool {
		_, ok, err := rt.Running(ctx, s.FilePath)
		if err != nil {
			t.Fatal(err)
		}
		return !ok
	})
	if found, err := rt.Kill(ctx, s.FilePath); err != nil || found {
		t.Errorf("Kill of a given-up trace = %v, %v; want not found", found, err)
	}
	if !strings.Contains(logs.String(), undeliveredLog) { // logged before the trace is unlisted
		t.Errorf("a given-up trace did not log %q", undeliveredLog)
	}
	waitFor(t, func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(rt.spoolPath(s.FilePath)); err != nil {
		t.Errorf("the given-up trace's spool: %v", err)
	}
}

func TestStderrTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"line one\nline two\nline three", 15, "...line three"},
		{"abcdefghij", 4, "...ghij"},
	} {
		if got := stderrTail(tc.in, tc.n); got != tc.want {
			t.Errorf("stderrTail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
