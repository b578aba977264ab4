package actors

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestSupervisionRestartsTraceActor injects a panic into a trace actor in the
// middle of a trace: the registry's strategy restarts it, the restarted actor
// keeps the same tracer and spool, and the platform receives every line with
// contiguous chunk numbers (the platform reports any gap or any resent chunk
// whose bytes differ as a violation).
func TestSupervisionRestartsTraceActor(t *testing.T) {
	rt, p, logs := newTestRuntime(t, nil)
	ctx := context.Background()
	const lines = 40
	started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(fmt.Sprintf("lines %d 50ms", lines)), Lasting: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	path := started.FilePath
	var pidBefore int
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, ok, err := rt.Running(ctx, path)
		if err != nil || !ok {
			t.Fatalf("Running: %v %v", ok, err)
		}
		if info.PID > 0 && info.ChunksSubmitted >= 2 {
			pidBefore = info.PID
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no chunks delivered before the crash")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 3; i++ {
		rt.system.Root.Send(rt.registry, &crash{path: path})
		time.Sleep(100 * time.Millisecond)
		info, ok, err := rt.Running(ctx, path)
		if err != nil || !ok {
			t.Fatalf("Running after crash %d: %v %v", i, ok, err)
		}
		if info.PID != 0 && info.PID != pidBefore {
			t.Fatalf("tracer pid changed from %d to %d across a restart", pidBefore, info.PID)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rec, err := p.WaitFinished(wctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(rec.Data), "\n"); got != lines {
		t.Errorf("platform holds %d lines, want %d", got, lines)
	}
	sc := bufio.NewScanner(bytes.NewReader(rec.Data))
	for want := 0; sc.Scan(); want++ {
		var l struct{ Seq int }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Seq != want {
			t.Fatalf("line %d = %q, want seq %d", want, sc.Text(), want)
		}
	}
	if rec.Finished.Code != 0 || rec.Finished.Reason != messages.ReasonCompleted {
		t.Errorf("finished %+v", rec.Finished)
	}
	if n := strings.Count(logs.String(), "trace actor restarted"); n != 3 {
		t.Errorf("%d restarts logged, want 3", n)
	}
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
	rt, _, _ := newTestRuntime(t, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	rt.system.Root.Send(rt.registry, &stall{d: time.Second})
	if _, err := rt.All(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("All on a stalled registry = %v, want ErrTimeout", err)
	}
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
