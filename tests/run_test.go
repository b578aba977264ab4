package tests

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// TestMakeRunScript runs scripts/run (what make run serves with): with a
// local platform-url nothing listens on, it starts the reference receiver
// beside the endpoint and a trace lands in the receiver's directory; with
// something listening there, it leaves the port alone and says so. SIGINT
// stops both processes.
func TestMakeRunScript(t *testing.T) {
	requireRoot(t)
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("platform port busy=%v", busy), func(t *testing.T) {
			dir := t.TempDir()
			listen, platformAddr := testsupport.FreeAddr(t), testsupport.FreeAddr(t)
			if busy {
				ln, err := net.Listen("tcp", platformAddr)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go http.Serve(ln, http.NotFoundHandler())
			}
			cfg := filepath.Join(dir, "lambda.toml")
			body := fmt.Sprintf(`[server]
listen = %q
metrics-listen = ""
[database]
url = "sqlite://%s/lambda.db"
[lambda]
endpoint-uuid = %q
secret = %q
platform-url = "http://%s"
bpf-path = %q
bpf-env-allow = ["BPFTRACE_FAKE_MODE=any"]
trace-dir = %q
data-dir = %q
`, listen, dir, testUUID, testSecret, platformAddr, fakeTracerBin, dir, filepath.Join(dir, "data"))
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			received := filepath.Join(dir, "received")
			cmd := exec.Command("../scripts/run")
			cmd.Env = append(os.Environ(), "BIN="+endpointBin, "CONFIG="+cfg, "RECEIVED="+received)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out := &testsupport.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			defer func() {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					t.Errorf("scripts/run did not stop on SIGINT:\n%s", out.String())
				}
				if t.Failed() {
					t.Logf("scripts/run output:\n%s", tail(out.String(), 10000))
				}
			}()
			e := &endpoint{t: t, URL: "http://" + listen}
			eventually(t, 60*time.Second, "the endpoint to answer", func() bool {
				st, _, _ := e.do("GET", "/heartbeat", "", nil)
				return st == http.StatusOK
			})
			if busy {
				if msg := "something already listens on 127.0.0.1:" + strings.Split(platformAddr, ":")[1]; !strings.Contains(out.String(), msg) {
					t.Errorf("scripts/run did not say %q", msg)
				}
				if _, err := os.Stat(received); err == nil {
					t.Errorf("a receiver directory was created although the port was taken")
				}
				return
			}
			if !strings.Contains(out.String(), "reference receiver on "+platformAddr) {
				t.Errorf("scripts/run did not announce the receiver on %s", platformAddr)
			}
			s := e.start("BPF", e.putTemplate(fakeTemplate("lines 20 10ms")), 60)
			rec := waitReceived(t, received, s.FilePath, 60*time.Second)
			checkSeqs(t, rec.Out, 20, false)
			checkReceived(t, rec, s.FilePath)
		})
	}
}
