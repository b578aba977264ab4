package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// receiverProc is a running "lambda-endpoint receive" process.
type receiverProc struct {
	t    *testing.T
	Addr string
	Dir  string
	cfg  string
	cmd  *exec.Cmd
	log  *testsupport.SyncBuffer
	done chan struct{}
}

// startReceiver starts the reference receiver on addr ("" for a free one)
// writing to dir ("" for a temp dir), with a config for the tests' UUID
// and secret, and waits until it accepts connections.
func startReceiver(t *testing.T, addr, dir string) *receiverProc {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if addr == "" {
		addr = testsupport.FreeAddr(t)
	}
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "received")
	}
	cfg := filepath.Join(t.TempDir(), "receive.toml")
	body := fmt.Sprintf("[lambda]\nendpoint-uuid = %q\nsecret = %q\nplatform-url = \"http://%s\"\n", testUUID, testSecret, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &receiverProc{t: t, Addr: addr, Dir: dir, cfg: cfg, log: &testsupport.SyncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(endpointBin, "receive", "--config", cfg, "--dir", dir, "--listen", addr)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.stop()
		if strings.Contains(r.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the receiver reported a data race:\n%s", r.log.String())
		}
		if t.Failed() {
			t.Logf("receiver log:\n%s", tail(r.log.String(), 10000))
		}
	})
	eventually(t, 30*time.Second, "the receiver to listen", func() bool {
		select {
		case <-r.done:
			t.Fatalf("the receiver exited at start:\n%s", r.log.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

func (r *receiverProc) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *receiverProc) kill() {
	r.cmd.Process.Kill()
	<-r.done
}

// received is what the receiver wrote for one trace.
type received struct {
	Out      []byte
	Finished struct {
		Trace  string `json:"trace"`
		Code   int    `json:"code"`
		Reason string `json:"reason"`
		Chunks int64  `json:"chunks"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
		Status string `json:"status"`
	}
}

// waitReceived waits for DIR/<id>.json of trace path and reads both files.
func waitReceived(t *testing.T, dir, path string, within time.Duration) received {
	t.Helper()
	id := strings.TrimSuffix(filepath.Base(path), ".trace")
	var rec received
	eventually(t, within, "the receiver's "+id+".json", func() bool {
		_, err := os.Stat(filepath.Join(dir, id+".json"))
		return err == nil
	})
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec.Finished); err != nil {
		t.Fatalf("%s.json: %v: %s", id, err, b)
	}
	if rec.Out, err = os.ReadFile(filepath.Join(dir, id+".out")); err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkReceived requires the .out bytes to be what the .json proves, the
// finished message to be the one of path, and reason completed.
func checkReceived(t *testing.T, rec received, path string) {
	t.Helper()
	sum := sha256.Sum256(rec.Out)
	f := rec.Finished
	if f.Trace != path || f.Status != "finished" {
		t.Errorf("finished message %+v is not the one of %s", f, path)
	}
	if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(rec.Out)) != f.Bytes {
		t.Errorf(".out holds %d bytes with sha256 %x; the finished message proves %d bytes, sha256 %s", len(rec.Out), sum, f.Bytes, f.SHA256)
	}
	if f.Reason != "completed" || f.Code != 0 {
		t.Errorf("finished reason %q code %d, want completed 0", f.Reason, f.Code)
	}
}

// TestReceiveEndToEnd: the real endpoint delivers a fake tracer's trace to
// the real receiver, which writes every line once and the finished message.
func TestReceiveEndToEnd(t *testing.T) {
	requireRoot(t)
	r := startReceiver(t, "", "")
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: "http://" + r.Addr, ChunkSize: 100})
	const lines = 40
	s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 10ms", lines))), 600)
	rec := waitReceived(t, r.Dir, s.FilePath, 60*time.Second)
	checkSeqs(t, rec.Out, lines, false)
	checkReceived(t, rec, s.FilePath)
	if rec.Finished.Chunks < 2 {
		t.Errorf("%d chunks: the test wants several", rec.Finished.Chunks)
	}
}

// TestReceiveKill9 kills the receiver with SIGKILL in the middle of a
// trace and starts it again on its directory: the endpoint's retries
// resume the trace and every line is in .out exactly once.
func TestReceiveKill9(t *testing.T) {
	requireRoot(t)
	r := startReceiver(t, "", "")
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: "http://" + r.Addr, ChunkSize: 64})
	const lines = 150
	s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 20ms", lines))), 600)
	out := filepath.Join(r.Dir, strings.TrimSuffix(filepath.Base(s.FilePath), ".trace")+".out")
	var size int64
	for round := 0; round < 2; round++ {
		eventually(t, 60*time.Second, "more output at the receiver", func() bool {
			st, err := os.Stat(out)
			if err == nil && st.Size() > size+200 {
				return true
			}
			return false
		})
		st, _ := os.Stat(out)
		size = st.Size()
		r.kill()
		if _, err := os.Stat(strings.TrimSuffix(out, ".out") + ".json"); err == nil {
			t.Fatalf("the trace was finished before kill %d: the test proves nothing (make it longer)", round+1)
		}
		r = startReceiver(t, r.Addr, r.Dir)
	}
	rec := waitReceived(t, r.Dir, s.FilePath, 90*time.Second)
	checkSeqs(t, rec.Out, lines, false)
	checkReceived(t, rec, s.FilePath)
}

// TestReceiveSecondOnDir: a second receiver on a directory in use refuses
// at once, naming the directory and the first one's PID.
func TestReceiveSecondOnDir(t *testing.T) {
	r := startReceiver(t, "", "")
	out, err := exec.Command(endpointBin, "receive", "--config", r.cfg, "--dir", r.Dir, "--listen", testsupport.FreeAddr(t)).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("second receiver: %v, want exit 1:\n%s", err, out)
	}
	for _, want := range []string{r.Dir, fmt.Sprintf("pid %d", r.cmd.Process.Pid)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("second receiver's message does not name %q:\n%s", want, out)
		}
	}
}
