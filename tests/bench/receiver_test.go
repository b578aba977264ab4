//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// receiver is a platform receiver in a process of its own, so that its CPU
// is measured apart from the endpoint's.
type receiver interface {
	URL() string
	PID() int
	// OutSize is how many bytes of the trace it has accepted.
	OutSize(path string) int64
	// WaitFinished waits for the trace's finished message.
	WaitFinished(ctx context.Context, path string) (receivedFinish, error)
	// Lines counts the lines of the trace's output.
	Lines(path string) (int64, error)
	// Remove forgets the trace's output (where the receiver can).
	Remove(path string)
}

// receiverProc is the reference platform receiver ("lambda-endpoint
// receive") in a process of its own, so that its CPU is measured apart from
// the endpoint's. It writes each trace's output to <dir>/<id>.out and the
// finished message to <dir>/<id>.json.
type receiverProc struct {
	url  string
	Dir  string
	cmd  *exec.Cmd
	log  *testsupport.SyncBuffer
	done chan struct{}
}

// startReceiver starts the receiver on a free loopback port. Its directory
// is on /dev/shm when there is one: the receiver fsyncs every chunk twice
// before it answers, which on tmpfs costs no disk wait, so the delivery is
// not bound by this machine's disk.
func startReceiver(t *testing.T, env *benchEnv) *receiverProc {
	t.Helper()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "lambda-bench-recv-")
	if err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	addr := testsupport.FreeAddr(t)
	cfg := fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
metrics-listen = ""
log-level = "warn"

[database]
url = %q

[lambda]
endpoint-uuid = %q
secret = %q
platform-url = %q
`, "sqlite://"+filepath.Join(cfgDir, "unused.db"), benchUUID, benchSecret, "http://"+addr)
	cfgPath := filepath.Join(cfgDir, "receiver.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &receiverProc{url: "http://" + addr, Dir: filepath.Join(dir, "traces"), log: &testsupport.SyncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(env.EndpointBin, "receive", "--config", cfgPath, "--dir", r.Dir, "--listen", addr)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("receiver log (tail):\n%s", tail(r.log.String(), 4000))
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-r.done:
			t.Fatalf("receiver exited at start:\n%s", r.log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver did not listen on %s:\n%s", addr, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is where the receiver listens.
func (r *receiverProc) URL() string { return r.url }

// PID is the receiver's process id.
func (r *receiverProc) PID() int { return r.cmd.Process.Pid }

// traceID is the receiver's id of the trace at path: its base name without
// ".trace".
func traceID(path string) string { return strings.TrimSuffix(filepath.Base(path), ".trace") }

// OutSize is how many bytes of the trace the receiver has acknowledged.
func (r *receiverProc) OutSize(path string) int64 {
	fi, err := os.Stat(filepath.Join(r.Dir, traceID(path)+".out"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// receivedFinish is the finished message as the receiver stored it.
type receivedFinish struct {
	Reason     string `json:"reason"`
	Code       int    `json:"code"`
	Stderr     string `json:"stderr"`
	Bytes      int64  `json:"bytes"`
	Chunks     int64  `json:"chunks"`
	LostEvents int64  `json:"lostEvents"`
}

// WaitFinished waits until the receiver has the trace's finished message.
func (r *receiverProc) WaitFinished(ctx context.Context, path string) (receivedFinish, error) {
	var f receivedFinish
	p := filepath.Join(r.Dir, traceID(path)+".json")
	for {
		b, err := os.ReadFile(p)
		if err == nil {
			if err := json.Unmarshal(b, &f); err != nil {
				return f, fmt.Errorf("decoding finished message %s: %w", b, err)
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return f, fmt.Errorf("no finished message for %s: %w", path, ctx.Err())
		case <-r.done:
			return f, fmt.Errorf("the receiver exited:\n%s", tail(r.log.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Lines counts the lines of the trace's delivered output.
func (r *receiverProc) Lines(path string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(r.Dir, traceID(path)+".out"))
	if err != nil {
		return 0, err
	}
	return int64(bytes.Count(b, []byte("\n"))), nil
}

// Remove deletes the trace's files (tmpfs is memory).
func (r *receiverProc) Remove(path string) {
	for _, ext := range []string{".out", ".idx", ".json"} {
		_ = os.Remove(filepath.Join(r.Dir, traceID(path)+ext))
	}
}

// counters are a process's cumulative counters from /proc.
type counters struct {
	CPU   time.Duration // utime+stime of the process (its threads, dead ones too; not its children)
	SysR  int64         // read-like syscalls (/proc/PID/io syscr)
	SysW  int64         // write-like syscalls (syscw)
	CtxSw int64         // voluntary+involuntary context switches of its live threads
}

// readCounters samples pid's counters (zero where /proc cannot be read: a
// process of the bench's own, so only when it has ended). /proc/PID/io takes
// in a child's counters when the child is reaped, so a delta is the
// process's own only while its children live.
func readCounters(pid int, tick time.Duration) counters {
	var c counters
	c.CPU, _ = cpuTime(pid, tick)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				c.SysR = n
			case "syscw":
				c.SysW = n
			}
		}
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				c.CtxSw += n
			}
		}
	}
	return c
}

// sub is c - b.
func (c counters) sub(b counters) counters {
	return counters{CPU: c.CPU - b.CPU, SysR: c.SysR - b.SysR, SysW: c.SysW - b.SysW, CtxSw: c.CtxSw - b.CtxSw}
}

// perfEventFDs counts pid's open perf event descriptors
// (anon_inode:[perf_event]): bpftrace 0.17 opens one per online CPU for its
// output buffer, then one per uprobe, uretprobe and interval probe as it
// attaches it (BEGIN and END are run without one).
func perfEventFDs(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == "anon_inode:[perf_event]" {
			n++
		}
	}
	return n
}

// waitPerfFDs waits until pid holds at least want perf event descriptors.
func waitPerfFDs(ctx context.Context, pid, want int) error {
	for {
		if perfEventFDs(pid) >= want {
			return nil
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return fmt.Errorf("process %d ended before it attached its probes", pid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d did not attach its probes (%d of %d perf events open): %w", pid, perfEventFDs(pid), want, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// scriptProbes counts the probes of a bpftrace script that bpftrace 0.17
// attaches as a perf event each: the lines that open a uprobe, uretprobe or
// interval probe.
func scriptProbes(script []byte) int {
	n := 0
	for _, l := range strings.Split(string(script), "\n") {
		for _, p := range []string{"uprobe:", "uretprobe:", "interval:"} {
			if strings.HasPrefix(l, p) {
				n++
				break
			}
		}
	}
	return n
}

// onlineCPUs is the number of online CPUs (bpftrace opens a perf buffer on
// each), from /sys/devices/system/cpu/online ("0-1", "0,2-3").
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 1
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if ok {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return max(n, 1)
}
