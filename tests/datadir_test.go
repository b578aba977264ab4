package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// TestSecondEndpointOnDataDir starts a second endpoint on the config of a
// running one (another LAMBDA_LISTEN, so the port does not stop it): it
// exits non-zero at once naming the data directory and the first one's PID,
// and the first endpoint's running trace is unharmed: its spool is left as
// it was and it completes with every line.
func TestSecondEndpointOnDataDir(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})
	const lines = 80
	s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 50ms", lines))), 600)
	waitRecord(t, p, s.FilePath, 30*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 1 })
	before := spoolEntries(t, e.DataDir)
	if !slices.Contains(before, filepath.Base(spoolDir(e.DataDir, s.FilePath))) {
		t.Fatalf("the running trace has no spool in %v", before)
	}

	// The harness writes the config beside the trace directory.
	cfgPath := filepath.Join(filepath.Dir(e.TraceDir), "lambda.toml")
	second := exec.Command(endpointBin, "serve", "--config", cfgPath)
	second.Env = append(os.Environ(), "LAMBDA_LISTEN="+testsupport.FreeAddr(t))
	out := &testsupport.SyncBuffer{}
	second.Stdout, second.Stderr = out, out
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- second.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		second.Process.Kill()
		<-exited
		t.Fatalf("the second endpoint still ran after 30s:\n%s", out.String())
	}
	if code := second.ProcessState.ExitCode(); code == 0 || code == -1 {
		t.Errorf("the second endpoint exited with %d, want a non-zero code:\n%s", code, out.String())
	}
	msg := out.String()
	for _, want := range []string{e.DataDir, "pid " + strconv.Itoa(e.PID())} {
		if !strings.Contains(msg, want) {
			t.Errorf("the second endpoint's message does not name %q:\n%s", want, msg)
		}
	}
	for _, touched := range []string{"database ready", "listening", "recover"} {
		if strings.Contains(msg, touched) {
			t.Errorf("the second endpoint got as far as %q before refusing:\n%s", touched, msg)
		}
	}
	if after := spoolEntries(t, e.DataDir); !slices.Equal(before, after) {
		t.Errorf("the spool directory changed while the second endpoint ran: %v, then %v", before, after)
	}

	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	checkSeqs(t, rec.Data, lines, false)
	checkProof(t, rec)
	if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
		t.Errorf("the first endpoint's trace finished %+v, want reason completed and code 0", f)
	}
	if st := e.Stop(); st != 0 {
		t.Errorf("the first endpoint exited with %d", st)
	}
}

// spoolEntries lists the names in dataDir/spool.
func spoolEntries(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
