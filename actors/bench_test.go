package actors

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// BenchmarkFlood measures the runtime's throughput from a tracer's stdout
// to the platform: the fake tracer writes 16 MiB as fast as it can, the
// runtime spools and delivers it to a local test platform that discards
// the data. It uses only the Runtime's public methods, so that it runs
// unchanged against other versions of the package.
func BenchmarkFlood(b *testing.B) {
	const size = 16 << 20
	dir := b.TempDir()
	tracerBin := filepath.Join(dir, "faketracer")
	if out, err := exec.Command("go", "build", "-o", tracerBin, "../tracer/internal/faketracer").CombinedOutput(); err != nil {
		b.Fatalf("building the fake tracer: %v\n%s", err, out)
	}
	const uuid, secret = "4633d686-f75d-4d1f-8415-02ce37d9e5f8", "abc123456"
	p := platformtest.New(b, uuid, secret, platformtest.WithDiscardData())
	hdr, err := auth.Header(uuid, secret)
	if err != nil {
		b.Fatal(err)
	}
	client, err := platform.New(p.URL(), hdr, platform.Options{})
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	defer system.Shutdown()
	rules, _ := validate.RulesFrom([]string{"BPFTRACE_FAKE_MODE=any"}, nil, false) // the fake tracer's mode
	rt, err := New(system, Options{Submitter: client, Logger: logger, BPFPath: tracerBin,
		TraceDir: dir, SpoolDir: filepath.Join(dir, "spool"), CgroupParent: "-", Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	finished, unsubscribe := rt.Subscribe(1)
	defer unsubscribe()
	tmpl := messages.Template{ID: 1, Info: messages.TemplateInfo{
		Process: "/bin/bash", Functions: []string{"xmalloc"},
		Environment: []string{"BPFTRACE_FAKE_MODE"}, Value: []string{"flood 16777216"},
		TraceType: messages.BPF,
	}}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.Start(context.Background(), StartRequest{Template: tmpl, Lasting: time.Minute}); err != nil {
			b.Fatal(err)
		}
		if f := <-finished; f.Bytes < size {
			b.Fatalf("finished %+v", f)
		}
	}
}
