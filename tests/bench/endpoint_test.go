//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// endpointOptions shape one endpoint process.
type endpointOptions struct {
	PlatformURL string
	BPFPath     string // default: the fake tracer
	Extra       string // more [lambda] TOML lines
}

// endpoint is a running lambda-endpoint process, stopped when its test ends.
type endpoint struct {
	t      *testing.T
	URL    string
	header string
	client *http.Client
	cmd    *exec.Cmd
	log    *testsupport.SyncBuffer
	done   chan struct{}
}

// startEndpoint writes a 0600 config (SQLite store, the fake tracer for
// both tracer types) and starts the endpoint binary, waiting until it
// answers HTTP; it has not verified any Authorization header yet.
func startEndpoint(t *testing.T, env *benchEnv, o endpointOptions) *endpoint {
	t.Helper()
	dir := t.TempDir()
	traceDir := filepath.Join(dir, "traces")
	if err := os.MkdirAll(traceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := testsupport.FreeAddr(t)
	if o.BPFPath == "" {
		o.BPFPath = env.FakeBin
	}
	if !strings.Contains(o.Extra, "bpf-env-allow") {
		// The fake tracer's mode (and testdata/burst.sh's settings) come
		// from the template's environment, which the allow-list must admit.
		o.Extra = "bpf-env-allow = [\"BPFTRACE_FAKE_MODE=any\", \"BPFTRACE_BENCH_*=any\"]\n" + o.Extra
	}
	cfg := fmt.Sprintf(`[server]
listen = %q
metrics-listen = ""
log-level = "warn"
shutdown-timeout = "20s"

[database]
url = %q

[lambda]
endpoint-uuid = %q
secret = %q
platform-url = %q
submit-chunk-size = 51200
bpf-path = %q
stap-path = %q
trace-dir = %q
data-dir = %q
kill-grace = "2s"
retry-min = "50ms"
retry-max = "500ms"
%s
`, addr, "sqlite://"+filepath.Join(dir, "bench.db"), benchUUID, benchSecret, o.PlatformURL,
		o.BPFPath, env.FakeBin, traceDir, filepath.Join(dir, "data"), o.Extra)
	cfgPath := filepath.Join(dir, "lambda.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &endpoint{
		t: t, URL: "http://" + addr, header: env.Header, log: &testsupport.SyncBuffer{}, done: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second},
	}
	e.cmd = exec.Command(env.EndpointBin, "serve", "--config", cfgPath)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("endpoint log (tail):\n%s", tail(e.log.String(), 8000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-e.done:
			t.Fatalf("endpoint exited at start:\n%s", e.log.String())
		default:
		}
		// Up when it answers at all: an unauthenticated request (401)
		// costs no argon2 verification, so a fresh endpoint stays as
		// fresh as it started.
		if res, err := e.client.Get(e.URL + "/heartbeat"); err == nil {
			res.Body.Close()
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint did not answer /heartbeat:\n%s", e.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// PID is the endpoint's process id.
func (e *endpoint) PID() int { return e.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the exit (SIGKILL after 60 s).
func (e *endpoint) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(60 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// goroutineCount is what a goroutine dump holds.
type goroutineCount struct {
	Total int
	HTTP  int // serving or holding a keep-alive HTTP connection
}

// Goroutines makes the endpoint dump its goroutines (SIGQUIT, which also
// ends it) and counts them.
func (e *endpoint) Goroutines() (goroutineCount, error) {
	var c goroutineCount
	_ = e.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
		return c, fmt.Errorf("the endpoint did not exit on SIGQUIT")
	}
	for _, block := range strings.Split(e.log.String(), "\n\n") {
		if !strings.HasPrefix(block, "goroutine ") {
			continue
		}
		c.Total++
		if strings.Contains(block, "net/http.(*persistConn)") || strings.Contains(block, "net/http.(*conn).serve") {
			c.HTTP++
		}
	}
	if c.Total == 0 {
		return c, fmt.Errorf("no goroutine dump in the endpoint's output")
	}
	return c, nil
}

// do sends a request with the valid Authorization header.
func (e *endpoint) do(method, path, body string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", e.header)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// mustJSON sends a request, requires status want and decodes the answer
// into out (if not nil).
func (e *endpoint) mustJSON(method, path, body string, want int, out any) {
	e.t.Helper()
	st, b, err := e.do(method, path, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// putFakeTemplate stores a BPF template that makes the fake tracer run
// mode (BPFTRACE_FAKE_MODE) and returns its id. more adds environment
// variables (name, value pairs).
func (e *endpoint) putFakeTemplate(process, mode string, more ...string) int64 {
	e.t.Helper()
	names := []string{"BPFTRACE_FAKE_MODE"}
	values := []string{mode}
	for i := 0; i+1 < len(more); i += 2 {
		names = append(names, more[i])
		values = append(values, more[i+1])
	}
	body, _ := json.Marshal(map[string]any{
		"process": process, "functions": []string{"main.main"}, "environment": names, // a Go binary: the preflight reads its symbols
		"value": values, "options": []string{}, "traceType": "BPF",
	})
	var res struct {
		TraceNo int64 `json:"traceNo"`
	}
	e.mustJSON("PUT", "/trace", string(body), http.StatusCreated, &res)
	return res.TraceNo
}

// putTemplate stores a BPF template for functions of process with
// environment (NAME=value entries) and returns its id.
func (e *endpoint) putTemplate(process string, functions []string, environment ...string) int64 {
	e.t.Helper()
	names, values := []string{}, []string{}
	for _, kv := range environment {
		k, v, _ := strings.Cut(kv, "=")
		names, values = append(names, k), append(values, v)
	}
	body, _ := json.Marshal(map[string]any{
		"process": process, "functions": functions, "environment": names,
		"value": values, "options": []string{}, "traceType": "BPF",
	})
	var res struct {
		TraceNo int64 `json:"traceNo"`
	}
	e.mustJSON("PUT", "/trace", string(body), http.StatusCreated, &res)
	return res.TraceNo
}

// startResult is the answer of POST /trace/start.
type startResult struct {
	Thread   int64  `json:"thread"`
	FilePath string `json:"filePath"`
}

// start starts template id for lasting seconds; it returns the answer and
// how long the request took.
func (e *endpoint) start(id int64, lasting int) (startResult, time.Duration, error) {
	return e.startWith(id, lasting, "", "")
}

// startWith is start with a trace mode and a BPF engine; each is sent only
// when not empty.
func (e *endpoint) startWith(id int64, lasting int, mode, engine string) (startResult, time.Duration, error) {
	req := map[string]any{"traceT": "BPF", "traceId": id, "lasting": lasting}
	if mode != "" {
		req["mode"] = mode
	}
	if engine != "" {
		req["engine"] = engine
	}
	b, _ := json.Marshal(req)
	body := string(b)
	t0 := time.Now()
	st, b, err := e.do("POST", "/trace/start", body)
	took := time.Since(t0)
	var r startResult
	if err != nil {
		return r, took, err
	}
	if st != http.StatusOK {
		return r, took, fmt.Errorf("POST /trace/start: status %d: %s", st, b)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, took, fmt.Errorf("decoding start answer %s: %w", b, err)
	}
	return r, took, nil
}

// runningInfo is the part of GET /trace/running the bench reads.
type runningInfo struct {
	State          string `json:"state"`
	PID            int    `json:"pid"`
	BytesRead      int64  `json:"bytesRead"`
	BytesSubmitted int64  `json:"bytesSubmitted"`
	LostEvents     int64  `json:"lostEvents"`
}

// running returns GET /trace/running?path=path.
func (e *endpoint) running(path string) (runningInfo, error) {
	var ri runningInfo
	st, b, err := e.do("GET", "/trace/running?path="+url.QueryEscape(path), "")
	if err != nil {
		return ri, err
	}
	if st != http.StatusOK {
		return ri, fmt.Errorf("GET /trace/running: status %d: %s", st, b)
	}
	if err := json.Unmarshal(b, &ri); err != nil {
		return ri, fmt.Errorf("decoding running info %s: %w", b, err)
	}
	return ri, nil
}

// kill sends POST /trace/kill for the trace at path.
func (e *endpoint) kill(path string) error {
	b, _ := json.Marshal(map[string]string{"killPath": path})
	st, res, err := e.do("POST", "/trace/kill", string(b))
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("POST /trace/kill: status %d: %s", st, res)
	}
	return nil
}
