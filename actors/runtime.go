package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Submitter delivers a trace's messages to the platform. Each method retries
// until the platform acknowledges or ctx is done. *platform.Client implements
// it.
type Submitter interface {
	Start(ctx context.Context, trace string) error
	Chunk(ctx context.Context, trace string, no int64, data []byte) error
	Finished(ctx context.Context, trace string, f messages.Finish) error
}

// Defaults of Options. Lasting and the stderr limit have theirs where they
// are enforced: validate.DefaultMaxLasting, tracer.DefaultStderrLimit.
const (
	DefaultBPFPath   = "/usr/bin/bpftrace"
	DefaultStapPath  = "/usr/bin/stap"
	DefaultSudoPath  = "/usr/bin/sudo"
	DefaultChunkSize = 51200 // raw bytes per chunk (lambda.submit-chunk-size)
	DefaultMaxTraces = 32    // tracers alive at once (lambda.max-traces)
)

// Options configure a Runtime. Zero values take the documented defaults,
// except Submitter, which is required.
type Options struct {
	Submitter Submitter     // required: where output goes
	Runs      RunStore      // optional: history of runs (persistence.Store)
	Logger    *slog.Logger  // default: slog.Default()
	Timeout   time.Duration // how long a caller waits for the registry, default 5s

	BPFPath      string // default DefaultBPFPath
	StapPath     string // default DefaultStapPath
	SudoPath     string // default DefaultSudoPath
	RootPassword string // fed to sudo -S when the endpoint is not root
	TraceDir     string // scripts <uuid>.trace, default os.TempDir()
	SpoolDir     string // required: per-trace spools
	CgroupParent string // tracer.Command.CgroupParent; "" means one per SpoolDir under the cgroup2 mount, "-" disables

	TracerMemoryMax      int64 // tracer.Command.MemoryMax; 0: no limit
	TracerPidsMax        int64 // tracer.Command.PidsMax; 0: no limit
	TracerLimitsRequired bool  // tracer.Command.LimitsRequired

	// BPFPerfRBPages sets BPFTRACE_PERF_RB_PAGES for bpftrace templates
	// that do not set it themselves; 0 leaves bpftrace's default.
	BPFPerfRBPages int

	// Engine runs BPF traces whose start names none: EngineBPFtrace (the
	// default) or EngineNative.
	Engine messages.Engine
	// NativeRingBytes is the native engine's ring buffer per trace, a
	// power of two within native.MinRingBytes..MaxRingBytes; 0 means
	// native.DefaultRingBytes.
	NativeRingBytes int

	ChunkSize     int           // raw bytes per chunk, default DefaultChunkSize
	FlushInterval time.Duration // default 1s
	MaxLasting    time.Duration // default validate.DefaultMaxLasting
	MaxTraces     int           // tracers alive at once, default DefaultMaxTraces
	KillGrace     time.Duration // SIGINT -> SIGKILL, and watchdog grace; default 5s
	StderrLimit   int           // default tracer.DefaultStderrLimit
	Spool         spool.Options // MaxBytes, Sync, ...
	Rules         validate.Rules

	// Binaries is the preflight of templates against their binaries at
	// start (see package binary); default binary.NewChecker(0, nil).
	Binaries *binary.Checker
	// LastThread is the highest thread id issued before (by an earlier
	// process, from the run history: persistence.Store.MaxThread): every
	// trace gets a greater one, so thread ids keep increasing across
	// restarts. The recovered spools' threads count too.
	LastThread int64
	// Observer hears the runtime's events (for metrics); default
	// NopObserver.
	Observer Observer

	hooks *testHooks // faults injected by this package's tests; nil otherwise
}

func (o *Options) setDefaults() error {
	if o.Submitter == nil {
		return errors.New("actors: Options.Submitter is required")
	}
	if o.SpoolDir == "" {
		return errors.New("actors: Options.SpoolDir is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 5*time.Second)
	def(&o.FlushInterval, time.Second)
	def(&o.MaxLasting, validate.DefaultMaxLasting)
	def(&o.KillGrace, 5*time.Second)
	switch o.Engine {
	case "":
		o.Engine = messages.EngineBPFtrace
	case messages.EngineBPFtrace, messages.EngineNative:
	default:
		return fmt.Errorf("actors: Options.Engine %q is not bpftrace or native", o.Engine)
	}
	if o.BPFPath == "" {
		o.BPFPath = DefaultBPFPath
	}
	if o.StapPath == "" {
		o.StapPath = DefaultStapPath
	}
	if o.SudoPath == "" {
		o.SudoPath = DefaultSudoPath
	}
	if o.TraceDir == "" {
		o.TraceDir = os.TempDir()
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxTraces <= 0 {
		o.MaxTraces = DefaultMaxTraces
	}
	if o.StderrLimit <= 0 {
		o.StderrLimit = tracer.DefaultStderrLimit
	}
	if o.Rules.EnvAllow == nil {
		o.Rules = validate.DefaultRules()
	}
	if o.Binaries == nil {
		o.Binaries = binary.NewChecker(0, nil)
	}
	if o.CgroupParent == "" {
		o.CgroupParent = instanceCgroup(o.SpoolDir)
	}
	return nil
}

// instanceCgroup is the default cgroup parent of a runtime's tracers,
// relative to the tracer package's cgroup base (the delegated unit's
// tracers directory, or the cgroup2 mount): one per spool directory, so that the
// clean-up at start kills what this endpoint's earlier process left and never
// the tracers of another endpoint on the same host.
func instanceCgroup(spoolDir string) string {
	abs, err := filepath.Abs(spoolDir)
	if err != nil {
		abs = spoolDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "lambda-endpoint/" + hex.EncodeToString(sum[:6])
}

// Runtime runs traces. It is safe for concurrent use.
type Runtime struct {
	opts     Options
	system   *actor.ActorSystem
	registry *actor.PID
	log      *slog.Logger

	// registryStrategy and traceStrategy supervise the registry and the
	// trace actors; each is the strategy of a guardian of its own (see
	// doc.go).
	registryStrategy actor.SupervisorStrategy
	traceStrategy    actor.SupervisorStrategy

	// ctx is the parent of every run's context; cancelling it stops every
	// goroutine the runtime started. wg counts those goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	limitsWarned sync.Once // the best-effort WARN about missing tracer limits

	// readBufs holds the senders' buffers for reading a chunk back from
	// the spool (*[]byte): a sender holds one only while it reads and
	// encodes a chunk, so 200 traces waiting for output hold none.
	readBufs sync.Pool

	history *persistence.HistoryQueue // nil without Options.Runs

	subMu sync.Mutex
	subs  map[chan messages.TraceFinished]struct{}

	// planning bounds the native starts planned at once (maxPlanning).
	planning chan struct{}
	// closing is set when Shutdown begins: Start refuses from then on.
	closing      atomic.Bool
	shutdownOnce sync.Once
}

// New starts a Runtime on system: it recovers spools left by an earlier
// process (their traces end with reason "interrupted" once delivered) and
// spawns the registry actor.
func New(system *actor.ActorSystem, o Options) (*Runtime, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{
		opts:     o,
		system:   system,
		log:      o.Logger.With("component", "trace-runtime"),
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[chan messages.TraceFinished]struct{}),
		planning: make(chan struct{}, maxPlanning),
		// Both restart whatever the panic: the state that matters lives
		// outside the instances.
		registryStrategy: actor.NewOneForOneStrategy(10, 10*time.Second, restartDecider),
		traceStrategy:    actor.NewOneForOneStrategy(10, 10*time.Second, restartDecider),
	}
	rt.startHistory()
	recovered, err := rt.recover()
	if err != nil {
		cancel()
		rt.wg.Wait()
		if rt.history != nil {
			rt.history.Close()
		}
		return nil, fmt.Errorf("recovering spools: %w", err)
	}
	state := newRegistryState(o.LastThread, recovered)
	props := actor.PropsFromProducer(func() actor.Actor { return &registry{rt: rt, s: state} },
		actor.WithGuardian(rt.registryStrategy))
	pid, err := system.Root.SpawnNamed(props, "lambda-registry-"+newUUID()[:8])
	if err != nil {
		cancel()
		rt.wg.Wait()
		if rt.history != nil {
			rt.history.Close()
		}
		for _, r := range recovered {
			r.sp.Close()
		}
		return nil, fmt.Errorf("spawning registry: %w", err)
	}
	rt.registry = pid
	system.Root.Send(pid, &begin{})
	return rt, nil
}

func restartDecider(reason interface{}) actor.Directive { return actor.RestartDirective }

// newTraceRun makes the run of a trace prepared by the registry.
func (rt *Runtime) newTraceRun(meta runMeta, script string, cmd tracer.Command) *traceRun {
	ctx, cancel := context.WithCancel(rt.ctx)
	return &traceRun{meta: meta, script: script, command: cmd, ctx: ctx, cancel: cancel,
		workers: make(map[string]*worker)}
}

// report pushes r's snapshot to the registry.
func (rt *Runtime) report(ctx actor.Context, r *traceRun) {
	if r.delivered {
		return
	}
	ctx.Send(rt.registry, &traceStatus{info: r.info(), alive: r.alive()})
}

// Running returns the trace identified by path; ok is false if it is unknown.
func (rt *Runtime) Running(ctx context.Context, path string) (info messages.RunningInfo, ok bool, err error) {
	res, err := rt.ask(ctx, &messages.GetRunning{Path: path})
	if err != nil {
		return messages.RunningInfo{}, false, err
	}
	reply := res.(*messages.GetRunningReply)
	return reply.Info, reply.Found, nil
}

// All lists every trace that is running or still delivering, by thread.
func (rt *Runtime) All(ctx context.Context) ([]messages.RunningInfo, error) {
	res, err := rt.ask(ctx, &messages.ListRunning{})
	if err != nil {
		return nil, err
	}
	return res.(*messages.ListRunningReply).Traces, nil
}

// Kill stops the trace identified by path: its tracer and every process the
// tracer started get SIGINT, then SIGKILL after the kill grace. The output
// read so far and a finished message are still delivered. found is false if
// path was not running.
func (rt *Runtime) Kill(ctx context.Context, path string) (found bool, err error) {
	res, err := rt.ask(ctx, &messages.KillTrace{Path: path})
	if err != nil {
		return false, err
	}
	return res.(*messages.KillTraceReply).Found, nil
}

// Subscribe returns a channel that receives every finished trace, and a
// function that ends the subscription. A subscriber that falls more than
// buffer messages behind misses messages (the runtime never blocks on it);
// each miss is logged.
func (rt *Runtime) Subscribe(buffer int) (<-chan messages.TraceFinished, func()) {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan messages.TraceFinished, buffer)
	rt.subMu.Lock()
	rt.subs[ch] = struct{}{}
	rt.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			rt.subMu.Lock()
			delete(rt.subs, ch)
			rt.subMu.Unlock()
		})
	}
}

func (rt *Runtime) publish(f messages.TraceFinished) {
	rt.subMu.Lock()
	defer rt.subMu.Unlock()
	for ch := range rt.subs {
		select {
		case ch <- f:
		default:
			rt.log.Warn("finished-trace subscriber is full; message dropped", "trace_path", f.FilePath)
		}
	}
}

// Shutdown stops taking traces, stops every tracer (reason "shutdown") and
// waits until their output is delivered or ctx is done. What is not
// delivered by then stays in the spool and is delivered by the next Runtime
// on the same spool directory. Shutdown then stops the registry and every
// goroutine of the runtime; it does not shut the actor system down.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	var err error
	rt.shutdownOnce.Do(func() {
		rt.closing.Store(true)
		// The registry answers once every trace is delivered (or its actor
		// stopped): no polling.
		wait := 24 * time.Hour
		if dl, ok := ctx.Deadline(); ok {
			wait = max(time.Until(dl), time.Millisecond)
		}
		f := rt.system.Root.RequestFuture(rt.registry, &shutdownAll{}, wait)
		_, ferr := f.Result()
		// From here everything is bounded by the kill grace together, so
		// that the process exits within the shutdown timeout and the kill
		// grace whatever a tracer, the kernel or the registry does.
		grace := time.Now().Add(rt.opts.KillGrace)
		left := func() time.Duration { return max(time.Until(grace), time.Millisecond) }
		var pids []*actor.PID
		lctx, cancel := context.WithTimeout(context.Background(), min(left(), rt.opts.Timeout))
		if res, lerr := rt.ask(lctx, &listActors{}); lerr == nil {
			pids = res.(*actorList).pids
		}
		cancel()
		if ferr != nil {
			rt.log.Warn("shutdown deadline reached; undelivered output stays in the spool", "traces", len(pids))
		}
		rt.cancel()
		rt.waitGoroutines(left())
		// The workers are gone: stop the actors of undelivered traces,
		// which close their spools for the next start (Stop is a system
		// message: it does not queue behind their mailboxes), all at once.
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			var wg sync.WaitGroup
			for _, pid := range pids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if perr := rt.system.Root.StopFuture(pid).Wait(); perr != nil {
						rt.log.Warn("stopping trace actor", "actor", pid.Id, "err", perr)
					}
				}()
			}
			wg.Wait()
		}()
		select {
		case <-stopped:
		case <-time.After(left()):
			rt.log.Error("trace actors still stopping after the kill grace; shutting down without them")
		}
		// The trace actors are gone, and with them every history row.
		if rt.history != nil {
			rt.history.Close()
		}
		// Every tracer is gone, and with it its cgroup: leave no empty
		// parent behind on the host.
		if rerr := tracer.RemoveCgroupParent(rt.opts.CgroupParent); rerr != nil {
			rt.log.Warn("removing tracer cgroup parent", "err", rerr)
		}
		regStopped := make(chan error, 1)
		rf := rt.system.Root.StopFuture(rt.registry)
		go func() { regStopped <- rf.Wait() }()
		select {
		case perr := <-regStopped:
			if perr != nil {
				err = fmt.Errorf("stopping registry: %w", perr)
			}
		case <-time.After(max(left(), 100*time.Millisecond)):
			rt.log.Error("registry still stopping after the kill grace; shutting down without it")
		}
	})
	return err
}

// waitGoroutines waits for the runtime's goroutines after its context is
// cancelled, but no longer than d (what is left of the kill grace): every
// one of them ends on the context (a tracer is killed, a submission cut
// off), so one that does not is stuck in the kernel, and the process must
// still exit within the shutdown timeout and the kill grace. It is logged.
func (rt *Runtime) waitGoroutines(d time.Duration) {
	done := make(chan struct{})
	go func() { rt.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		rt.log.Error("runtime goroutines still running after the kill grace; shutting down without them",
			"kill_grace", rt.opts.KillGrace.String())
	}
}

// ask sends msg to the registry and waits for its answer under the runtime's
// timeout and ctx.
func (rt *Runtime) ask(ctx context.Context, msg interface{}) (interface{}, error) {
	timeout := rt.opts.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return nil, ErrTimeout
	}
	res, err := rt.system.Root.RequestFuture(rt.registry, msg, timeout).Result()
	if err != nil && rt.closing.Load() {
		// The registry is stopping or gone: a dead letter, or no answer.
		return nil, ErrShuttingDown
	}
	if err != nil {
		if errors.Is(err, actor.ErrTimeout) {
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
		}
		return nil, fmt.Errorf("asking registry: %w", err)
	}
	return res, nil
}

// goroutine runs f in a goroutine owned by the runtime: counted, and
// protected from panics (only an actor's mailbox goroutine is supervised).
func (rt *Runtime) goroutine(name string, f func()) {
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				rt.log.Error("goroutine panicked", "goroutine", name, "panic", fmt.Sprint(r))
			}
		}()
		f()
	}()
}
