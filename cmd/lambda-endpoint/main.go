// Command lambda-endpoint is the per-host tracing agent: a REST API that
// stores trace templates and runs them as time-limited bpftrace or SystemTap
// traces, streaming their output to the platform.
//
// Usage:
//
//	lambda-endpoint serve --config FILE      run the endpoint
//	lambda-endpoint receive --config FILE --dir DIR [--listen ADDR]
//	                                         run the reference platform receiver
//	lambda-endpoint token --config FILE      print a valid Authorization header value
//	lambda-endpoint templates add|ls|rm      manage trace templates through the API
//	lambda-endpoint traces start|ls|kill|watch|history|describe
//	                                         run and watch traces, read the run history
//	lambda-endpoint version                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/lambda-endpoint/lambda-endpoint/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `lambda-endpoint: a per-host tracing agent (bpftrace / SystemTap) with a REST API.

Usage:
  lambda-endpoint serve --config FILE      run the endpoint
  lambda-endpoint receive --config FILE --dir DIR [--listen ADDR]
                                           run the reference platform receiver
  lambda-endpoint token --config FILE      print a valid Authorization header value
  lambda-endpoint templates add|ls|rm      manage trace templates through the API
  lambda-endpoint traces start|ls|kill|watch|history|describe
                                           run and watch traces, read the run history
  lambda-endpoint version                  print the version
  lambda-endpoint help COMMAND             a command's help (same as COMMAND --help)

Run "lambda-endpoint COMMAND --help" for a command's flags.
Environment variables override the config file (see README): LAMBDA_LISTEN,
LAMBDA_DATABASE_URL, LAMBDA_SECRET, LAMBDA_PLATFORM_URL, ...
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "token", "templates", "traces":
		warnUnknownEnv(func(w string) { fmt.Fprintf(stderr, "lambda-endpoint: warning: %s\n", w) })
	}
	switch args[0] {
	case "serve":
		err = serveCommand(ctx, args[1:], stderr)
	case "receive":
		err = receiveCommand(ctx, args[1:], stderr)
	case "token":
		err = tokenCommand(args[1:], stdout, stderr)
	case "templates":
		err = cli.Templates(ctx, args[1:], cliEnv(stdout, stderr))
	case "traces":
		err = cli.Traces(ctx, args[1:], cliEnv(stdout, stderr))
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "lambda-endpoint", versionString())
		return 0
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && args[0] == "help" {
			// help CMD is CMD --help.
			return run(ctx, append(append([]string{}, args[1:]...), "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lambda-endpoint: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, cli.ErrUsage):
		if !errors.Is(err, errUsage) && err != cli.ErrUsage {
			fmt.Fprintf(stderr, "lambda-endpoint %s: %v\n", args[0], err)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "lambda-endpoint %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage error")

// cliEnv is what the API commands of package cli need from the process.
func cliEnv(stdout, stderr io.Writer) cli.Env {
	return cli.Env{Stdout: stdout, Stderr: stderr, Getenv: os.LookupEnv, Terminal: func() bool {
		f, ok := stdout.(*os.File)
		if !ok {
			return false
		}
		st, err := f.Stat()
		return err == nil && st.Mode()&os.ModeCharDevice != 0
	}}
}

// parseFlags parses a command's flags; --config is required.
func parseFlags(name, help string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the TOML configuration file (required)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: lambda-endpoint %s --config FILE\n\n%s\n\nFlags:\n", name, help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lambda-endpoint %s: unexpected arguments %q\n", name, fs.Args())
		fs.Usage()
		return "", errUsage
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "lambda-endpoint %s: --config is required\n", name)
		fs.Usage()
		return "", errUsage
	}
	return *configPath, nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}
