package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

const (
	testUUID   = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	testSecret = "abc123456"
)

var (
	endpointBin   string // the endpoint, built with -race
	fakeTracerBin string
	authHeader    string // a valid Authorization value, computed once
	buildErr      error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambda-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	endpointBin = filepath.Join(dir, "lambda-endpoint")
	fakeTracerBin = filepath.Join(dir, "faketracer")
	if old := os.Getenv("LAMBDA_TEST_ENDPOINT_BIN"); old != "" {
		// Another build of the endpoint (an older commit's), to show that a
		// test fails on it.
		endpointBin = old
	} else {
		buildErr = build(endpointBin, "-race", "../cmd/lambda-endpoint")
	}
	if buildErr == nil {
		buildErr = build(fakeTracerBin, "", "../tracer/internal/faketracer")
	}
	if buildErr == nil {
		authHeader, buildErr = auth.Header(testUUID, testSecret)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out, flag, pkg string) error {
	args := []string{"build", "-o", out}
	if flag != "" {
		args = append(args, flag)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// inCI reports whether missing components must fail the tests.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireRoot fails (CI) or skips the test when not root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("this test needs root (CI=true)")
		}
		t.Skip("SKIPPING: this test needs root to run tracers")
	}
}

// requireBpftrace fails (CI) or skips the test when bpftrace is missing,
// and returns its path.
func requireBpftrace(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	p, err := exec.LookPath("bpftrace")
	if err != nil {
		if inCI() {
			t.Fatal("bpftrace is not installed (CI=true): apt-get install -y bpftrace")
		}
		t.Skip("SKIPPING: bpftrace is not installed")
	}
	return p
}

// stores returns a fresh database URL per store kind; PostgreSQL's absence
// fails under CI and skips elsewhere (persistencetest decides).
func stores(t *testing.T) map[string]string { return persistencetest.URLs(t) }

// endpointOptions shape one endpoint process.
type endpointOptions struct {
	DatabaseURL string
	PlatformURL string
	BPFPath     string // default: the fake tracer
	StapPath    string // default: the fake tracer
	ChunkSize   int    // default 51200
	DataDir     string // default: a temp dir (reuse one to restart an endpoint on its spool)
	Env         []string
	Extra       string // more [lambda] TOML lines
	Listen      string // server.listen; default: a free loopback port
	Server      string // more [server] TOML lines
}

// endpoint is a running lambda-endpoint process.
type endpoint struct {
	t          *testing.T
	URL        string
	MetricsURL string // Prometheus exposition (no Authorization)
	TraceDir   string
	DataDir    string
	cmd        *exec.Cmd
	log        *testsupport.SyncBuffer
	done       chan struct{}
	exitCode   int
}

// startEndpoint writes a 0600 config and starts the endpoint binary with it,
// waiting until /heartbeat answers. The process is stopped at cleanup and
// must not have reported a data race.
func startEndpoint(t *testing.T, o endpointOptions) *endpoint {
	t.Helper()
	e, cfgPath := newEndpoint(t, o)
	e.run(cfgPath, o.Env)
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, _, _ := e.do("GET", "/heartbeat", "", nil); st == http.StatusOK {
			return e
		}
		select {
		case <-e.done:
			t.Fatalf("endpoint exited at start (code %d):\n%s", e.exitCode, e.log.String())
		case <-deadline.C:
			t.Fatalf("endpoint did not answer /heartbeat:\n%s", e.log.String())
		case <-tick.C:
		}
	}
}

// newEndpoint writes the 0600 config of o (a fresh SQLite store when o
// names no database) and returns the endpoint it describes and the
// config's path, not started (endpoint.run starts it).
func newEndpoint(t *testing.T, o endpointOptions) (*endpoint, string) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	if o.DatabaseURL == "" {
		o.DatabaseURL = "sqlite://" + filepath.Join(dir, "lambda.db")
	}
	if o.Listen == "" {
		o.Listen = testsupport.FreeAddr(t)
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(dir, "data")
	}
	if o.BPFPath == "" {
		o.BPFPath = fakeTracerBin
	}
	if o.StapPath == "" {
		o.StapPath = fakeTracerBin
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 51200
	}
	if o.PlatformURL == "" {
		o.PlatformURL = "http://127.0.0.1:1" // nothing listens: deliveries retry
	}
	traceDir := filepath.Join(dir, "traces")
	if err := os.MkdirAll(traceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := o.Listen
	metricsAddr := testsupport.FreeAddr(t)
	// The fake tracer takes its mode from BPFTRACE_FAKE_MODE; these lines
	// stand in [lambda], before Extra (which may open [auth]).
	envAllow := ""
	if !strings.Contains(o.Extra, "env-allow") {
		envAllow = "bpf-env-allow = [\"BPFTRACE_FAKE_MODE=any\"]\nstap-env-allow = [\"SYSTEMTAP_DEBUG=bool\"]\n"
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
metrics-listen = %q
log-level = "debug"
shutdown-timeout = "10s"
%s
[database]
url = %q

[lambda]
endpoint-uuid = %q
secret = %q
platform-url = %q
submit-chunk-size = %d
bpf-path = %q
stap-path = %q
trace-dir = %q
data-dir = %q
kill-grace = "2s"
retry-min = "50ms"
retry-max = "500ms"
%s%s
`, addr, metricsAddr, o.Server, o.DatabaseURL, testUUID, testSecret, o.PlatformURL, o.ChunkSize, o.BPFPath, o.StapPath, traceDir, o.DataDir, envAllow, o.Extra)
	cfgPath := filepath.Join(dir, "lambda.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &endpoint{t: t, URL: "http://" + addr, MetricsURL: "http://" + metricsAddr + "/metrics", TraceDir: traceDir, DataDir: o.DataDir}
	return e, cfgPath
}

// run starts `lambda-endpoint serve --config cfgPath` as e (with env added
// to the test's environment), without waiting for it to answer. It stops
// the process at cleanup and fails the test on a data race the endpoint
// reported.
func (e *endpoint) run(cfgPath string, env []string) {
	t := e.t
	e.log, e.done = &testsupport.SyncBuffer{}, make(chan struct{})
	e.cmd = exec.Command(endpointBin, "serve", "--config", cfgPath)
	e.cmd.Env = append(os.Environ(), env...)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.cmd.Wait()
		e.exitCode = e.cmd.ProcessState.ExitCode()
		if ws, ok := e.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.exitCode = 128 + int(ws.Signal())
		}
		close(e.done)
	}()
	t.Cleanup(func() {
		e.Stop()
		if strings.Contains(e.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the endpoint reported a data race:\n%s", e.log.String())
		}
		if t.Failed() {
			t.Logf("endpoint log:\n%s", tail(e.log.String(), 20000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Stop sends SIGTERM and waits for the exit; it returns the exit code.
func (e *endpoint) Stop() int {
	select {
	case <-e.done:
		return e.exitCode
	default:
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(60 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
		e.t.Errorf("endpoint did not stop within 60s of SIGTERM")
	}
	return e.exitCode
}

// Kill sends SIGKILL and waits for the exit.
func (e *endpoint) Kill() {
	e.cmd.Process.Kill()
	<-e.done
}

// PID is the endpoint's process id.
func (e *endpoint) PID() int { return e.cmd.Process.Pid }

// do sends a request with a valid Authorization header (unless hdr sets
// one) and returns the status, body and Content-Type.
func (e *endpoint) do(method, path, body string, hdr map[string]string) (int, []byte, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", authHeader)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header.Get("Content-Type")
}

// mustJSON sends a request, requires status want and decodes the JSON
// answer into out (if not nil).
func (e *endpoint) mustJSON(method, path, body string, want int, out interface{}) {
	e.t.Helper()
	st, b, ct := e.do(method, path, body, nil)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if !strings.HasPrefix(ct, "application/json") {
			e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// putTemplate stores a template and returns its id.
func (e *endpoint) putTemplate(body string) int64 {
	e.t.Helper()
	var res struct {
		TraceNo int64 `json:"traceNo"`
	}
	e.mustJSON("PUT", "/trace", body, http.StatusCreated, &res)
	return res.TraceNo
}

type started struct {
	Thread   int64  `json:"thread"`
	FilePath string `json:"filePath"`
}

// start starts template id and returns the answer.
func (e *endpoint) start(typ string, id int64, lasting int) started {
	e.t.Helper()
	var s started
	e.mustJSON("POST", "/trace/start", fmt.Sprintf(`{"traceT":%q,"traceId":%d,"lasting":%d}`, typ, id, lasting), http.StatusOK, &s)
	return s
}

// newPlatform starts a test platform for the test's endpoint.
func newPlatform(t *testing.T, opts ...platformtest.Option) *platformtest.Platform {
	p := platformtest.New(t, testUUID, testSecret, opts...)
	t.Cleanup(func() { p.AssertNoViolations(t) })
	return p
}

// waitFinished waits for the finished message of path.
func waitFinished(t *testing.T, p *platformtest.Platform, path string, within time.Duration) platformtest.TraceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rec, err := p.WaitFinished(ctx, path)
	if err != nil {
		t.Fatalf("waiting for finished of %s: %v (record so far: started=%v chunks=%d)", path, err, rec.Started, rec.ChunkCount)
	}
	return rec
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// processesRunning lists the pids whose command line contains needle.
func processesRunning(needle string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(needle)) {
			continue
		}
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
