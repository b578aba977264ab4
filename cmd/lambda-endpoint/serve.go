package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/config"
	"github.com/lambda-endpoint/lambda-endpoint/httpapi"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/metrics"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

const serveHelp = `Runs the endpoint: the REST API on server.listen, the template store on
database.url, and the trace runtime. SIGINT or SIGTERM stops it gracefully:
no new requests, every tracer killed, output delivered within
server.shutdown-timeout (the rest stays in the spool for the next start).
With server.tls-cert and server.tls-key the REST API speaks TLS (1.2 or
later) and SIGHUP rereads both files without closing the listener; a reload
that fails is logged as an error and the old certificate stays in use.`

func serveCommand(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := parseFlags("serve", serveHelp, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Server, stderr)
	warnUnknownEnv(func(w string) { logger.Warn(w) })
	return serve(ctx, cfg, logger)
}

// warnUnknownEnv reports each LAMBDA_* variable that overrides nothing (a
// typo would otherwise be ignored silently).
func warnUnknownEnv(warn func(string)) {
	for _, w := range config.UnknownEnv(os.Environ()) {
		warn(w)
	}
}

func newLogger(s config.Server, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.SlogLevel()}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the endpoint until ctx is cancelled, then stops it in order:
// the HTTP server stops taking requests, the runtime kills its tracers and
// delivers what it can, the actor system and the store close.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	// SIGHUP reloads the TLS key pair; caught from the start so that one
	// arriving early does not kill the endpoint (Go's default).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	l := cfg.Lambda
	// First thing: one endpoint per data directory. Nothing (database,
	// spool recovery, cgroup clean-up) runs before this lock is held.
	lock, err := lockDataDir(l.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	logger.Info("starting lambda-endpoint", "version", versionString(), "listen", cfg.Server.Listen, "tls", cfg.Server.TLS(),
		"endpoint_uuid", l.EndpointUUID, "platform_url", l.PlatformURL, "data_dir", l.DataDir, "euid", os.Geteuid())

	// The key pair is read before anything is started, so that a bad
	// certificate stops the start at once.
	var pair *keyPair
	tlsLog := logger.With("component", "tls")
	if cfg.Server.TLS() {
		if pair, err = loadKeyPair(cfg.Server.TLSCert, cfg.Server.TLSKey); err != nil {
			return err
		}
		tlsLog.Info("TLS key pair loaded", certAttrs(pair.cert.Load())...)
	}
	hctx, stopHangup := context.WithCancel(context.Background())
	hangupDone := make(chan struct{})
	go func() {
		defer close(hangupDone)
		reloadOnHangup(hctx, hup, pair, tlsLog)
	}()
	defer func() {
		stopHangup()
		<-hangupDone
	}()

	persistence.SetLogger(logger)
	store, err := persistence.Open(ctx, cfg.Database.URL)
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer store.Close()
	logger.Info("database ready", "dialect", store.Dialect())

	// Metrics are bound before the runtime starts, so that a bad
	// metrics-listen stops the start and the runtime's first events count.
	m := metrics.New(metrics.Build{Version: versionString(), GoVersion: runtime.Version()})
	if addr := cfg.Server.MetricsListen; addr != "" {
		ms, err := metrics.Listen(addr, m)
		if err != nil {
			return err
		}
		mctx, stopMetrics := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Errorf("serving metrics: panic: %v", p)
				}
			}()
			done <- ms.Serve(mctx)
		}()
		defer func() {
			stopMetrics()
			if err := <-done; err != nil {
				logger.Error("stopping metrics", "err", err)
			}
		}()
		logger.Info("metrics listening", "addr", ms.Addr().String())
	}

	outgoing, err := auth.Header(l.EndpointUUID, l.Secret)
	if err != nil {
		return fmt.Errorf("computing outgoing authorization: %w", err)
	}
	// The hash's argon2 memory (4 MiB at the seed cost) is garbage now, but
	// an idle endpoint would not collect it: give it back at once.
	debug.FreeOSMemory()
	outage := &outageLog{log: logger.With("component", "submit"), backlog: m.SpoolBacklog, now: time.Now}
	client, err := platform.New(l.PlatformURL, outgoing, platform.Options{
		AttemptTimeout: l.SubmitTimeout.Duration,
		RetryMin:       l.RetryMin.Duration,
		RetryMax:       l.RetryMax.Duration,
		OnRetry: func(kind, trace string, attempt int, err error, wait time.Duration) {
			m.SubmitRetry(kind)
			outage.retry(kind, trace, attempt, err, wait)
		},
		OnRecovered: outage.recovered,
		OnAcked:     func(kind, _ string, took time.Duration) { m.SubmitAcked(kind, took, time.Now()) },
	})
	if err != nil {
		return fmt.Errorf("creating platform client: %w", err)
	}
	sync, err := spool.ParseSyncPolicy(l.SpoolSync)
	if err != nil {
		return fmt.Errorf("lambda.spool-sync: %w", err)
	}
	rules, err := validate.RulesFrom(cfg.Lambda.BPFEnvAllow, cfg.Lambda.StapEnvAllow, cfg.Lambda.AllowUnsafeOptions)
	if err != nil {
		return fmt.Errorf("lambda.bpf-env-allow / lambda.stap-env-allow: %w", err)
	}
	binaries := binary.NewChecker(l.MaxProbes, nil) // one preflight cache for PUT and start

	lastThread, err := store.MaxThread(ctx)
	if err != nil {
		return fmt.Errorf("reading the highest thread id of the run history: %w", err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	defer system.Shutdown()
	rt, err := actors.New(system, actors.Options{
		Submitter: client, Runs: store, Logger: logger, Timeout: cfg.Server.RequestTimeout.Duration,
		BPFPath: l.BPFPath, StapPath: l.StapPath, SudoPath: l.SudoPath, RootPassword: l.RootPassword,
		TraceDir: l.TraceDir, SpoolDir: cfg.SpoolDir(), CgroupParent: l.CgroupParent,
		TracerMemoryMax: l.TracerMemoryMax, TracerPidsMax: l.TracerPidsMax,
		TracerLimitsRequired: l.TracerLimits == config.TracerLimitsRequired,
		ChunkSize:            l.SubmitChunkSize, FlushInterval: l.FlushInterval.Duration,
		MaxLasting: l.MaxLasting.Duration, MaxTraces: l.MaxTraces, KillGrace: l.KillGrace.Duration,
		StderrLimit:     l.StderrLimit,
		Spool:           spool.Options{MaxBytes: l.SpoolMaxBytes, Sync: sync, SyncEvery: l.FlushInterval.Duration},
		Rules:           rules,
		Binaries:        binaries,
		LastThread:      lastThread,
		BPFPerfRBPages:  l.BPFPerfRBPages,
		Engine:          messages.Engine(l.Engine),
		NativeRingBytes: l.NativeRingBytes,
		Observer:        m,
	})
	if err != nil {
		return fmt.Errorf("starting trace runtime: %w", err)
	}

	// The stderr tails of recently finished runs, for GET /traces/history
	// (the run history in the database does not keep stderr).
	finishedCh, unsubscribe := rt.Subscribe(256)
	defer unsubscribe()
	finished := httpapi.NewFinishedLog(finishedCh, 0)
	logCtx, stopLog := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		defer func() {
			if p := recover(); p != nil {
				logger.Error("finished-run log panicked; history shows no stderr tails from now on", "panic", fmt.Sprint(p))
			}
		}()
		finished.Run(logCtx, 0)
	}()
	defer func() { stopLog(); <-logDone }()

	a := cfg.Auth
	cacheSize := a.CacheSize
	if cacheSize == 0 {
		cacheSize = -1 // config: 0 disables the cache; auth: negative does
	}
	api, err := httpapi.New(httpapi.Options{
		Templates: store, Runs: store, Finished: finished, Traces: rt,
		Verifier: auth.NewVerifier(l.EndpointUUID, l.Secret, auth.Limits{
			MaxMemoryKiB: a.MaxMemoryKiB, MaxIterations: a.MaxIterations, MaxParallelism: a.MaxParallelism,
			MaxConcurrent: a.MaxConcurrent, MaxWait: a.MaxWait.Duration, MaxQueue: a.MaxQueue,
			CacheSize: cacheSize, CacheTTL: a.CacheTTL.Duration,
		}),
		Rules: rules, MaxLasting: l.MaxLasting.Duration, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Logger: logger, Binaries: binaries, Observer: m,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Start-up work (the outgoing argon2 hash alone takes 4 MiB, migrations,
	// recovery) is done: give that memory back, an agent should sit light
	// on the host it watches.
	debug.FreeOSMemory()
	serveErr := make(chan error, 1)
	if pair != nil {
		srv.TLSConfig = pair.tlsConfig()
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		warnPlainHTTP(logger, cfg.Server.Listen, ln.Addr().String())
		go func() { serveErr <- srv.Serve(ln) }()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "tls", pair != nil)

	select {
	case <-ctx.Done():
		logger.Info("stopping: signal received")
	case err = <-serveErr:
		logger.Error("HTTP server stopped", "err", err)
	}

	deadline := cfg.Server.ShutdownTimeout.Duration
	sctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Both at once: a request still in progress (a start reading a large
	// binary) must not eat the time the tracers' output needs to be
	// delivered; the runtime refuses new traces from the first moment.
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if herr := srv.Shutdown(sctx); herr != nil {
			logger.Warn("closing HTTP connections", "err", herr)
		}
	}()
	if rerr := rt.Shutdown(sctx); rerr != nil {
		logger.Warn("stopping trace runtime", "err", rerr)
	}
	<-httpDone
	logger.Info("stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
