package actors_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// memorySubmitter receives the traces' output in-process: an
// actors.Submitter needs only the messages package's types.
type memorySubmitter struct {
	mu     sync.Mutex
	output map[string]*bytes.Buffer // by trace path
}

func (s *memorySubmitter) Start(_ context.Context, trace string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.output[trace] == nil { // a start may be sent again
		s.output[trace] = &bytes.Buffer{}
	}
	return nil
}

func (s *memorySubmitter) Chunk(_ context.Context, trace string, no int64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.output[trace].Write(data) // chunks come in order, each once it is acknowledged
	return nil
}

func (s *memorySubmitter) Finished(context.Context, string, messages.Finish) error { return nil }

func (s *memorySubmitter) bytes(trace string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output[trace].Bytes()
}

// readObserver hears the runtime's events; it tells how much output each
// trace has read (every event names its trace).
type readObserver struct {
	actors.NopObserver
	read chan read // never blocking the runtime
}

type read struct {
	path string
	n    int64
}

func (o *readObserver) OutputRead(e messages.TraceEvent, n int64) {
	select {
	case o.read <- read{e.Path, n}:
	default:
	}
}

// Example shows a Go service embedding the trace runtime on its own actor
// system, receiving the output in-process: it starts a trace bound to a
// context, waits until the trace has written something, cancels the
// context (which stops the trace), reads the finished trace's summary and
// checks it against what it received, then shuts down. The "tracer" is a
// small shell script so that the example runs anywhere; a real service
// points BPFPath at bpftrace (or uses the native engine).
func Example() {
	dir, _ := os.MkdirTemp("", "embed-")
	defer os.RemoveAll(dir)
	tracerPath := filepath.Join(dir, "tracer")
	os.WriteFile(tracerPath, []byte("#!/bin/sh\necho '{\"event\":1}'\necho '{\"event\":2}'\nexec sleep 600\n"), 0o755)

	// One logger for the service, protoactor-go and the runtime.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	defer system.Shutdown()
	sub := &memorySubmitter{output: map[string]*bytes.Buffer{}}
	obs := &readObserver{read: make(chan read, 16)}
	rt, err := actors.New(system, actors.Options{
		Submitter:    sub,
		Observer:     obs,
		Logger:       logger,
		BPFPath:      tracerPath,
		TraceDir:     dir,
		SpoolDir:     filepath.Join(dir, "spool"),
		CgroupParent: "-", // no cgroup: the example may run unprivileged
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	finished, unsubscribe := rt.Subscribe(4)
	defer unsubscribe()

	// The trace lives as long as ctx (or its lasting).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, err := rt.Start(ctx, actors.StartRequest{
		Template: messages.Template{ID: 1, Info: messages.TemplateInfo{
			Process: "/bin/bash", Functions: []string{"xmalloc"}, TraceType: messages.BPF,
		}},
		Lasting: time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for got := int64(0); got < 24; { // both lines read
		if r := <-obs.read; r.path == started.FilePath {
			got += r.n
		}
	}
	cancel() // stops the trace: its output is still delivered

	f := <-finished
	sum := sha256.Sum256(sub.bytes(started.FilePath))
	fmt.Println("reason:", f.Reason, "bytes:", f.Bytes, "chunks:", f.Chunks)
	fmt.Println("sha256 matches the output received:", f.SHA256 == hex.EncodeToString(sum[:]))

	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	rt.Shutdown(sctx)
	_, err = rt.Start(context.Background(), actors.StartRequest{})
	fmt.Println("start after shutdown:", errors.Is(err, actors.ErrShuttingDown))
	// Output:
	// reason: killed bytes: 24 chunks: 1
	// sha256 matches the output received: true
	// start after shutdown: true
}
