package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/config"
	"github.com/lambda-endpoint/lambda-endpoint/platform/receiver"
)

const receiveHelp = `Runs the reference platform receiver: it answers PUT /submit on ADDR,
verifies every Authorization header against the config's endpoint-uuid and
secret, holds each trace to the submit protocol, and writes DIR/<id>.out
(the trace's raw output, each byte once) and, at the end, DIR/<id>.json
(the finished message as received). What it acknowledged is on disk
(fsynced) before it answers; after a restart it carries on from DIR.
Point the endpoint's lambda.platform-url at http://ADDR.

DIR is created 0700 when missing; an existing DIR must belong to the user
running the receiver and be writable by no one else, or it is refused. The
receiver never follows a symbolic link in DIR, never truncates a file it did
not create, and keeps the files of at most %d traces open between their
messages (two descriptors each; more only while requests are in progress).`

func receiveCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the TOML configuration file (required)")
	listen := fs.String("listen", "", "host:port to listen on (default: the host:port of the config's lambda.platform-url)")
	dir := fs.String("dir", "", "directory the traces are written to (required)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: lambda-endpoint receive --config FILE --dir DIR [--listen ADDR]\n\n%s\n\nFlags:\n", fmt.Sprintf(receiveHelp, receiver.DefaultMaxOpenTraces))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 || *configPath == "" || *dir == "" {
		fmt.Fprintln(stderr, "lambda-endpoint receive: --config and --dir are required, and nothing else")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if *listen == "" {
		if *listen, err = platformHostPort(cfg.Lambda.PlatformURL); err != nil {
			return err
		}
	}
	logger := newLogger(cfg.Server, stderr).With("component", "receiver")
	warnUnknownEnv(func(w string) { logger.Warn(w) })
	a := cfg.Auth
	cacheSize := a.CacheSize
	if cacheSize == 0 {
		cacheSize = -1 // config: 0 disables the cache; auth: negative does
	}
	r, err := receiver.New(receiver.Options{
		Dir: *dir,
		Verifier: auth.NewVerifier(cfg.Lambda.EndpointUUID, cfg.Lambda.Secret, auth.Limits{
			MaxMemoryKiB: a.MaxMemoryKiB, MaxIterations: a.MaxIterations, MaxParallelism: a.MaxParallelism,
			MaxConcurrent: a.MaxConcurrent, CacheSize: cacheSize, CacheTTL: a.CacheTTL.Duration,
		}),
		Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("--dir %s: %w", *dir, err)
	}
	defer r.Close()
	// One receiver per directory, like one endpoint per data-dir. Taken
	// after New has checked that no other user can write the directory (so
	// nothing is written to one that is refused), through the directory New
	// holds open.
	lock, err := r.Lock()
	if err != nil {
		return fmt.Errorf("--dir %s: %w", *dir, err)
	}
	defer lock.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("receiving", "addr", ln.Addr().String(), "dir", *dir, "endpoint_uuid", cfg.Lambda.EndpointUUID)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// platformHostPort is the host:port of a platform URL (port 80 or 443 when
// the URL gives none): where a local receiver listens by default.
func platformHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("lambda.platform-url: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
