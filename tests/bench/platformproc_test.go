//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// platformProc is a platformtest receiver in a child process (this test
// binary running TestReceiverProcess): the light receiver, which checks the
// submit protocol and the Authorization header and keeps a SHA-256 (and,
// unless discarding, the bytes) in memory. The bench asks it for a trace's
// state over a control port of its own.
type platformProc struct {
	url, control string
	cmd          *exec.Cmd
	stdin        io.Closer
	client       *http.Client
	log          strings.Builder
}

// startPlatformProc starts the child; discard makes it keep no bytes (no
// line counts then).
func startPlatformProc(t *testing.T, discard bool) *platformProc {
	t.Helper()
	p := &platformProc{client: &http.Client{Timeout: 30 * time.Second}}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestReceiverProcess$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), "BENCH_RECV=1", fmt.Sprintf("BENCH_RECV_DISCARD=%t", discard))
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stdin.Close() // the child exits when its stdin closes
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if after, ok := strings.CutPrefix(sc.Text(), "RECEIVER "); ok {
			f := strings.Fields(after)
			if len(f) == 2 {
				p.url, p.control = f[0], f[1]
			}
			break
		}
	}
	if p.url == "" {
		t.Fatalf("the receiver process printed no address: %s", p.log.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return p
}

func (p *platformProc) URL() string { return p.url }
func (p *platformProc) PID() int    { return p.cmd.Process.Pid }

// procState is the child's answer about one trace.
type procState struct {
	Bytes    int64           `json:"bytes"`
	Lines    int64           `json:"lines"`
	Finished *receivedFinish `json:"finished"`
}

func (p *platformProc) state(path string, lines bool) (procState, error) {
	var st procState
	u := p.control + "/state?path=" + url.QueryEscape(path)
	if lines {
		u += "&lines=1"
	}
	res, err := p.client.Get(u)
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return st, fmt.Errorf("receiver state: status %d: %s", res.StatusCode, b)
	}
	return st, json.NewDecoder(res.Body).Decode(&st)
}

func (p *platformProc) OutSize(path string) int64 {
	st, err := p.state(path, false)
	if err != nil {
		return 0
	}
	return st.Bytes
}

func (p *platformProc) WaitFinished(ctx context.Context, path string) (receivedFinish, error) {
	for {
		st, err := p.state(path, false)
		if err != nil {
			return receivedFinish{}, err
		}
		if st.Finished != nil {
			return *st.Finished, nil
		}
		select {
		case <-ctx.Done():
			return receivedFinish{}, fmt.Errorf("no finished message for %s: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *platformProc) Lines(path string) (int64, error) {
	st, err := p.state(path, true)
	return st.Lines, err
}

func (p *platformProc) Remove(path string) {
	res, err := p.client.Post(p.control+"/forget?path="+url.QueryEscape(path), "text/plain", nil)
	if err == nil {
		res.Body.Close()
	}
}

// TestReceiverProcess is the child of startPlatformProc: a platformtest
// receiver, with a control port answering GET /state?path=P (bytes, lines
// when asked, the finished message) and POST /forget?path=P (counted as
// forgotten: platformtest keeps what it received, so the child ends when the
// section does). It prints "RECEIVER URL CONTROL-URL" and runs until its
// stdin closes. It is skipped unless startPlatformProc runs it.
func TestReceiverProcess(t *testing.T) {
	if os.Getenv("BENCH_RECV") != "1" {
		t.Skip("the receiver process runs as a child of the bench sections")
	}
	var opts []platformtest.Option
	if os.Getenv("BENCH_RECV_DISCARD") == "true" {
		opts = append(opts, platformtest.WithDiscardData())
	}
	p := platformtest.New(t, benchUUID, benchSecret, opts...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		rec := p.Trace(r.URL.Query().Get("path"))
		st := procState{Bytes: rec.Bytes}
		if r.URL.Query().Get("lines") != "" {
			st.Lines = int64(bytes.Count(rec.Data, []byte("\n")))
		}
		if f := rec.Finished; f != nil {
			st.Finished = &receivedFinish{Reason: f.Reason, Code: f.Code, Stderr: f.Stderr, Bytes: f.Bytes, Chunks: f.Chunks, LostEvents: f.LostEvents}
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /forget", func(w http.ResponseWriter, r *http.Request) {})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("RECEIVER %s http://%s\n", p.URL(), ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}
