//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/httpapi"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/platform"
)

const (
	apiClients   = 8               // concurrent keep-alive clients
	apiDuration  = 3 * time.Second // per case
	apiTemplates = 100             // templates GET /traces lists
	apiFreshPool = 300             // fresh headers per route (argon2 ~11 ms each to make and to verify)
	apiReps      = 3               // rounds of the repeated-header and no-auth cases; medians
)

// allowAll is the no-auth baseline's Verifier: every request passes.
type allowAll struct{}

func (allowAll) Verify(context.Context, string) error { return nil }

// benchAPI measures the REST API in process on loopback: the real
// httpapi.Server on a real SQLite store and trace runtime, with the argon2
// verifier and with a verifier that lets everything through.
func benchAPI(t *testing.T, env *benchEnv, s *section) {
	s.Intro = fmt.Sprintf("The real `httpapi.Server` (SQLite store holding %d templates, a real `actors.Runtime`) "+
		"served in process on loopback; %d concurrent keep-alive clients send GETs one after the other for %s per case: "+
		"(a) one valid Authorization header repeated (the verifier's cache answers after the first request), "+
		"(b) a fresh header per request (each one a full argon2 verification; a pool of %d pre-generated headers per route, "+
		"the case ends when it runs out), "+
		"(c) the baseline: the same server and handlers with a Verifier that accepts everything. "+
		"(a) and (c) alternate for %d rounds; values are the median round, the (a) ratio the median of the per-round ratios to (c).",
		apiTemplates, apiClients, apiDuration, apiFreshPool, apiReps)
	ctx := context.Background()
	dir := t.TempDir()
	store, err := persistence.Open(ctx, "sqlite://"+filepath.Join(dir, "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for i := 0; i < apiTemplates; i++ {
		_, err := store.CreateTemplate(ctx, messages.TemplateInfo{
			Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"},
			Environment: []string{"BPFTRACE_STRLEN"}, Value: []string{"64"}, Options: []string{"-B", "line"},
			TraceType: messages.BPF,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := platform.New("http://127.0.0.1:1", env.Header, platform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	t.Cleanup(system.Shutdown)
	rt, err := actors.New(system, actors.Options{
		Submitter: client, Runs: store, Logger: logger, BPFPath: env.FakeBin, StapPath: env.FakeBin,
		TraceDir: dir, SpoolDir: filepath.Join(dir, "spool"), CgroupParent: "-",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(sctx)
	})
	serve := func(v httpapi.Verifier) string {
		api, err := httpapi.New(httpapi.Options{Templates: store, Runs: store, Traces: rt, Verifier: v, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		return "http://" + ln.Addr().String()
	}
	authURL := serve(auth.NewVerifier(benchUUID, benchSecret, auth.Limits{}))
	openURL := serve(allowAll{})

	pools := make(map[string][]string)
	routes := []string{"/heartbeat", "/traces"}
	t0 := time.Now()
	all := freshHeaders(t, len(routes)*apiFreshPool)
	t.Logf("generated %d fresh headers in %s", len(all), time.Since(t0).Round(time.Millisecond))
	for i, r := range routes {
		pools[r] = all[i*apiFreshPool : (i+1)*apiFreshPool]
	}
	repeated := func(int64) (string, bool) { return env.Header, true }

	for _, route := range routes {
		var a, c []loadResult
		for rep := 0; rep < apiReps; rep++ {
			a = append(a, runLoad(authURL+route, apiClients, apiDuration, repeated))
			c = append(c, runLoad(openURL+route, apiClients, apiDuration, repeated))
			t.Logf("%s round %d: repeated %.0f req/s, no-auth %.0f req/s", route, rep+1, a[rep].RPS(), c[rep].RPS())
		}
		pool := pools[route]
		// A fresh server: its verifier has seen none of the pool.
		freshURL := serve(auth.NewVerifier(benchUUID, benchSecret, auth.Limits{}))
		b := runLoad(freshURL+route, apiClients, apiDuration, func(i int64) (string, bool) {
			if i >= int64(len(pool)) {
				return "", false
			}
			return pool[i], true
		})
		t.Logf("%s fresh: %.0f req/s (%d requests)", route, b.RPS(), b.OK)

		am, cm := medianLoad(a), medianLoad(c)
		var pairs []float64 // per-round (a)/(c)
		for i := range a {
			pairs = append(pairs, ratio(a[i].RPS(), c[i].RPS()))
		}
		pr := medianFloat(pairs)
		s.addRow(row{Name: "GET " + route + " (a) repeated header", Value: fmtLoad(am), Baseline: fmtLoad(cm),
			Ratio: pr, Target: "≥ 0.8x", Met: atLeast(pr, 0.8)})
		s.addRow(row{Name: "GET " + route + " (b) fresh header per request", Value: fmtLoad(b), Baseline: fmtLoad(cm),
			Ratio: ratio(b.RPS(), cm.RPS())})
		s.addRow(row{Name: "GET " + route + " (c) no auth", Value: fmtLoad(cm), Ratio: 1})
		for _, r := range append(append(a, c...), b) {
			if r.Errors > 0 {
				t.Errorf("GET %s: %d failed requests, first: %s", route, r.Errors, r.FirstErr)
				s.note("GET %s: %d requests failed (first: %s)", route, r.Errors, r.FirstErr)
			}
		}
		s.note("GET %s rounds, req/s: repeated %s; no auth %s", route, fmtRPS(a), fmtRPS(c))
	}
	s.note("(b) is bounded by argon2: every fresh header costs one verification (m=4096, t=3: about 11 ms of CPU), at most `max-concurrent` (one per CPU) at once.")
	s.note("The load generator runs in the same process and shares the %d CPUs with the server, in every case alike.", runtime.NumCPU())
}

// freshHeaders makes n distinct valid headers, one per CPU at a time.
func freshHeaders(t *testing.T, n int) []string {
	out := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	work := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				h, err := auth.Header(benchUUID, benchSecret)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
				out[i] = h
			}
		}()
	}
	for i := range out {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

// medianLoad returns the run with the median rate.
func medianLoad(rs []loadResult) loadResult {
	best := rs[0]
	rates := make([]float64, len(rs))
	for i, r := range rs {
		rates[i] = r.RPS()
	}
	m := medianFloat(rates)
	for _, r := range rs {
		if r.RPS() == m {
			best = r
		}
	}
	return best
}

func fmtLoad(r loadResult) string {
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s", r.RPS(), fmtDur(percentile(r.Lat, 50)), fmtDur(percentile(r.Lat, 99)))
}

func fmtRPS(rs []loadResult) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.0f", r.RPS())
	}
	return s
}
