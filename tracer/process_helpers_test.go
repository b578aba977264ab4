//go:build linux

package tracer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake tracer is built once per test binary, on first use, into fakeDir;
// TestMain removes it.
var (
	fakeOnce sync.Once
	fakeDir  string
	fakePath string
	fakeErr  error
)

// Environment of the re-executed test binary in TestParentDeath.
const (
	helperEnv       = "TRACER_TEST_DEATH_HELPER"
	helperFakeEnv   = "TRACER_TEST_FAKE"
	helperScriptEnv = "TRACER_TEST_SCRIPT"
	helperParentEnv = "TRACER_TEST_PARENT"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runDeathHelper())
	}
	code := m.Run()
	if fakeDir != "" {
		_ = os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

// fakeTracer returns the path of the built faketracer.
func fakeTracer(t testing.TB) string {
	t.Helper()
	fakeOnce.Do(func() {
		fakeDir, fakeErr = os.MkdirTemp("", "faketracer-")
		if fakeErr != nil {
			return
		}
		fakePath = filepath.Join(fakeDir, "faketracer")
		out, err := exec.Command("go", "build", "-o", fakePath, "./internal/faketracer").CombinedOutput()
		if err != nil {
			fakeErr = fmt.Errorf("building faketracer: %v\n%s", err, out)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakePath
}

// fakeScript writes a faketracer script (its first line is the mode).
func fakeScript(t testing.TB, mode string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake.trace")
	if err := os.WriteFile(path, []byte(mode+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testCgroupParent returns a cgroup parent of this test's own, removed with
// Cleanup at its end, or "-" when this machine has no writable cgroup v2.
// Tests never use the shared default parent: Cleanup there would kill the
// tracers of other test binaries running at the same time.
func testCgroupParent(t testing.TB) string {
	t.Helper()
	def, err := resolveCgroupParent("")
	if err != nil {
		t.Logf("running uncontained: %v", err)
		return "-"
	}
	parent := filepath.Join(filepath.Dir(def), "lambda-endpoint-test-"+rand.Text()[:10])
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Logf("running uncontained: %v", err)
		return "-"
	}
	t.Cleanup(func() {
		if err := Cleanup(parent); err != nil {
			t.Errorf("Cleanup(%s): %v", parent, err)
		}
		if err := RemoveCgroupParent(parent); err != nil {
			t.Errorf("RemoveCgroupParent(%s): %v", parent, err)
		}
		// The v2 parent and, on hybrid hosts, its v1 limit parents.
		left := []string{parent}
		for _, ctl := range []string{"memory", "pids"} {
			if v1, err := v1Parent(parent, ctl); err == nil && !v2Has(ctl) {
				left = append(left, v1)
			}
		}
		for _, dir := range left {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("cgroup %s left behind", dir)
			}
		}
	})
	return parent
}

// requireCgroup skips (or fails in CI) when parent is not a usable cgroup.
func requireCgroup(t testing.TB, parent string) {
	t.Helper()
	if parent == "-" {
		if os.Getenv("CI") == "true" {
			t.Fatal("cgroup v2 is not writable here; CI must provide it")
		}
		t.Skip("SKIPPING: cgroup v2 is not writable here")
	}
}

// startFake starts the faketracer in the given mode, in a cgroup under a
// parent of the test's own unless edit sets CgroupParent; the test's end
// kills it and waits for it.
func startFake(t testing.TB, mode string, edit func(*Command)) *Process {
	t.Helper()
	c := Command{
		Path:   fakeTracer(t),
		Script: fakeScript(t, mode),
		Name:   "t-" + rand.Text()[:10],
	}
	if edit != nil {
		edit(&c)
	}
	if c.CgroupParent == "" {
		// Never the shared default parent.
		c.CgroupParent = testCgroupParent(t)
	}
	p, err := Start(context.Background(), c)
	if err != nil {
		t.Fatalf("Start(%q): %v", mode, err)
	}
	t.Cleanup(func() {
		p.Kill()
		_ = p.CloseStdout()
		<-p.Done()
	})
	return p
}

const patience = 60 * time.Second // deadline for conditions polled in tests

// waitExit waits for p, failing the test if it never ends.
func waitExit(t testing.TB, p *Process) Exit {
	t.Helper()
	select {
	case <-p.Done():
		return p.Wait()
	case <-time.After(patience):
		p.Kill()
		t.Fatalf("tracer %d did not end", p.PID())
		return Exit{}
	}
}

// readAll reads stdout to EOF, failing the test if EOF never comes.
func readAll(t testing.TB, p *Process, r io.Reader) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading stdout: %v", res.err)
		}
		return res.b
	case <-time.After(patience):
		_ = p.CloseStdout()
		<-ch
		t.Fatalf("no EOF on stdout of tracer %d", p.PID())
		return nil
	}
}

// readUntil scans JSON lines until one has the key, returning all lines
// read so far.
func readUntil(t testing.TB, sc *bufio.Scanner, key string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
		if _, ok := m[key]; ok {
			return lines
		}
	}
	t.Fatalf("stdout ended (%v) before a line with %q; got %v", sc.Err(), key, lines)
	return nil
}

// childPids extracts the pids of {"child":PID} lines.
func childPids(lines []map[string]any) []int {
	var pids []int
	for _, m := range lines {
		if v, ok := m["child"].(float64); ok {
			pids = append(pids, int(v))
		}
	}
	return pids
}

// procIdentity returns the start time of a live (non-zombie) process, which
// tells it apart from a later process that reuses its pid.
func procIdentity(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", false
	}
	return f[19], true
}

// identities records the identities of live processes.
func identities(t testing.TB, pids []int) map[int]string {
	t.Helper()
	ids := make(map[int]string, len(pids))
	for _, pid := range pids {
		id, ok := procIdentity(pid)
		if !ok {
			t.Fatalf("process %d is not running", pid)
		}
		ids[pid] = id
	}
	return ids
}

// alive lists which of the recorded processes still run.
func alive(ids map[int]string) []int {
	var pids []int
	for pid, id := range ids {
		if now, ok := procIdentity(pid); ok && now == id {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone polls until none of the recorded processes runs.
func waitGone(t testing.TB, ids map[int]string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		left := alive(ids)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still running", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runDeathHelper is the endpoint stand-in of TestParentDeath: it starts a
// fork-mode tracer, passes its output on with the tracer's pid, and blocks
// until killed.
func runDeathHelper() int {
	p, err := Start(context.Background(), Command{
		Path:         os.Getenv(helperFakeEnv),
		Script:       os.Getenv(helperScriptEnv),
		CgroupParent: os.Getenv(helperParentEnv),
		Name:         "death",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("{\"tracer\":%d}\n", p.PID())
	sc := bufio.NewScanner(p.Stdout())
	for sc.Scan() {
		fmt.Println(sc.Text())
		if strings.Contains(sc.Text(), "ready") {
			break
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
