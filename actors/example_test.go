package actors_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
)

// Example shows a Go service embedding the trace runtime on its own actor
// system: it starts a trace, waits for it to finish and reads the outcome.
// The "tracer" here is a small shell script so that the example runs
// anywhere; a real service points BPFPath at bpftrace.
func Example() {
	// Where the output goes: a stand-in for the platform.
	var bodies atomic.Int64
	platformSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		bodies.Add(1)
	}))
	defer platformSrv.Close()

	dir, _ := os.MkdirTemp("", "embed-")
	defer os.RemoveAll(dir)
	tracerPath := filepath.Join(dir, "tracer")
	os.WriteFile(tracerPath, []byte("#!/bin/sh\necho '{\"event\":1}'\necho '{\"event\":2}'\n"), 0o755)

	client, _ := platform.New(platformSrv.URL, "my-endpoint-authorization", platform.Options{})
	// One logger for the service, protoactor-go and the runtime.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	defer system.Shutdown()
	rt, err := actors.New(system, actors.Options{
		Submitter:    client,
		BPFPath:      tracerPath,
		TraceDir:     dir,
		SpoolDir:     filepath.Join(dir, "spool"),
		CgroupParent: "-", // no cgroup: the example may run unprivileged
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	finished, unsubscribe := rt.Subscribe(1)
	defer unsubscribe()

	ctx := context.Background()
	_, err = rt.Start(ctx, actors.StartRequest{
		Template: messages.Template{ID: 1, Info: messages.TemplateInfo{
			Process: "/bin/bash", Functions: []string{"xmalloc"}, TraceType: messages.BPF,
		}},
		Lasting: 10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := <-finished
	fmt.Println("reason:", f.Reason, "code:", f.Code, "bytes:", f.Bytes, "chunks:", f.Chunks)

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rt.Shutdown(sctx)
	fmt.Println("platform requests:", bodies.Load())
	// Output:
	// reason: completed code: 0 bytes: 24 chunks: 1
	// platform requests: 3
}
