//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// profileSubmit runs one flood trace through an in-process trace runtime
// (the endpoint's actors.Runtime with the same options as the binary's
// defaults) to a platformtest receiver and writes a CPU profile of the
// whole process to out. It returns how long delivery took.
func profileSubmit(t *testing.T, env *benchEnv, out string) (time.Duration, error) {
	dir := t.TempDir()
	p := platformtest.New(t, benchUUID, benchSecret, platformtest.WithDiscardData())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := platform.New(p.URL(), env.Header, platform.Options{})
	if err != nil {
		return 0, err
	}
	rules, err := validate.RulesFrom([]string{"BPFTRACE_FAKE_MODE=any"}, nil, false) // the fake tracer's mode
	if err != nil {
		return 0, err
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	defer system.Shutdown()
	rt, err := actors.New(system, actors.Options{
		Submitter: client, Logger: logger, BPFPath: env.FakeBin, StapPath: env.FakeBin,
		TraceDir: dir, SpoolDir: filepath.Join(dir, "spool"), CgroupParent: "-",
		Spool: spool.Options{Sync: syncPolicy(), SyncEvery: time.Second}, Rules: rules,
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	}()
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return 0, err
	}
	defer pprof.StopCPUProfile()
	t0 := time.Now()
	reply, err := rt.Start(context.Background(), actors.StartRequest{
		Template: messages.Template{ID: 1, Info: messages.TemplateInfo{
			Process: env.FakeBin, Functions: []string{"main.main"}, TraceType: messages.BPF, // a symbol the preflight finds
			Environment: []string{"BPFTRACE_FAKE_MODE"}, Value: []string{fmt.Sprintf("flood %d", submitBytes)},
		}},
		Lasting: 10 * time.Minute,
	})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := p.WaitFor(ctx, reply.FilePath, func(tr platformtest.TraceRecord) bool { return tr.Bytes >= submitBytes }); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// TestProfileSubmit writes a CPU profile of one in-process submission run
// to BENCH_PROFILE (a file); it is skipped without it.
func TestProfileSubmit(t *testing.T) {
	out := os.Getenv("BENCH_PROFILE")
	if out == "" {
		t.Skip("set BENCH_PROFILE=FILE to profile the submission path")
	}
	env := newBenchEnv(t)
	if env.buildErr != nil {
		t.Fatal(env.buildErr)
	}
	d, err := profileSubmit(t, env, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in-process delivery of %s took %s (%.0f MB/s)", fmtMiB(submitBytes), fmtDur(d), mbps(submitBytes, d))
}

func syncPolicy() spool.SyncPolicy {
	if os.Getenv("BENCH_SYNC") == "never" {
		return spool.SyncNever
	}
	return spool.SyncInterval
}

// profileShare is one function's cumulative CPU time in a profile.
type profileShare struct {
	Label string
	Func  string // as pprof prints it, e.g. "spool.(*Spool).Ack"
	Cum   string
}

// profileCum runs "go tool pprof -top -cum" on prof and returns the
// cumulative time of each of funcs (matched as a suffix of pprof's function
// name) and pprof's header line with the duration and total samples.
func profileCum(prof string, funcs []profileShare) ([]profileShare, string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=400", prof).Output()
	if err != nil {
		return nil, "", fmt.Errorf("running go tool pprof: %w", err)
	}
	header := ""
	res := slices.Clone(funcs)
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Duration:") {
			header = strings.TrimSpace(l)
		}
		f := strings.Fields(l)
		// flat flat% sum% cum cum% name [(inline)]
		if len(f) < 6 || len(f) > 7 {
			continue
		}
		for i := range res {
			if res[i].Cum == "" && (f[5] == res[i].Func || strings.HasSuffix(f[5], "/"+res[i].Func)) {
				res[i].Cum = f[3]
			}
		}
	}
	return res, header, nil
}
