//go:build linux

package tracer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment of the re-executed test binary in TestDelegatedLayout.
const (
	delegateHelperEnv = "TRACER_TEST_DELEGATE_HELPER"
	delegateFakeEnv   = "TRACER_TEST_DELEGATE_FAKE"
	delegateScriptEnv = "TRACER_TEST_DELEGATE_SCRIPT"
	delegateNameEnv   = "TRACER_TEST_DELEGATE_NAME"
	delegateParent    = "lambda-endpoint/0123456789ab" // what actors passes for a data-dir
	delegateMemoryMax = 256 << 20
	delegatePidsMax   = 32
)

// delegateReport is what the helper tells TestDelegatedLayout, on fd 3.
type delegateReport struct {
	Unit         string // the delegated cgroup it found
	Why          string
	Self         string // its own cgroup v2 path after starting the tracer
	TracerPID    int
	TracerCgroup string
	LimitsErr    string
	Err          string
}

// delegatedTestUnit makes a cgroup that stands for a systemd unit with
// Delegate=yes (a *.service directory below the cgroup2 mount, marked with
// systemd's trusted.delegate xattr) and removes it, with everything below
// it and the v1 limit cgroups made for it, at the test's end. Without a
// writable cgroup2 it fails in CI and returns "" elsewhere.
func delegatedTestUnit(t *testing.T) string {
	t.Helper()
	mount, err := cgroup2Mount()
	unit := ""
	if err == nil {
		unit = filepath.Join(mount, "lambda-endpoint-test-"+rand.Text()[:10]+".service")
		err = os.Mkdir(unit, 0o755)
	}
	if err == nil {
		if err = unix.Setxattr(unit, "trusted.delegate", []byte("1"), 0); err != nil {
			err = unix.Setxattr(unit, "user.delegate", []byte("1"), 0)
		}
		if err != nil {
			_ = os.Remove(unit)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup2 is not writable here (%v): CI must provide it", err)
		}
		t.Logf("NOT RUN: cgroup2 is not writable here (%v); CI=true makes this a failure", err)
		return ""
	}
	t.Cleanup(func() {
		dirs := []string{unit}
		for _, ctl := range []string{"memory", "pids"} {
			if own, err := v1Dir(ctl, "/proc/self/cgroup"); err == nil && !v2Has(ctl) {
				dirs = append(dirs, filepath.Join(own, filepath.Base(unit)))
			}
		}
		for _, dir := range dirs {
			if err := removeCgroupTree(dir); err != nil {
				t.Errorf("removing %s: %v", dir, err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cgroup %s left behind: %v", dir, err)
			}
		}
	})
	return unit
}

// TestDelegatedLayout runs an endpoint stand-in (this test binary again)
// in a delegated unit cgroup and checks that its first tracer gets the
// delegated layout: the endpoint moved itself into <unit>/endpoint, the
// tracer's cgroup lies in <unit>/tracers/<parent>/<name> with its limits,
// <unit> itself holds no process (cgroup v2's rule for a cgroup with
// controllers enabled below it), and killing the unit's cgroup, as systemd
// does at the end of KillMode=mixed, kills the tracer too.
func TestDelegatedLayout(t *testing.T) {
	unit := delegatedTestUnit(t)
	if unit == "" {
		return
	}
	mount, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	name := "t-" + rand.Text()[:10]
	reportR, reportW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer reportR.Close()
	var stderr bytes.Buffer
	helper := exec.Command(os.Args[0], "-test.run=^TestDelegatedLayoutHelper$", "-test.count=1")
	helper.Env = append(os.Environ(),
		delegateHelperEnv+"=1",
		delegateFakeEnv+"="+fakeTracer(t),
		delegateScriptEnv+"="+fakeScript(t, "silent 10m"),
		delegateNameEnv+"="+name,
	)
	helper.ExtraFiles = []*os.File{reportW}
	helper.Stderr = &stderr
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	reportW.Close()
	waited := false
	t.Cleanup(func() {
		stdin.Close()
		if !waited {
			_ = helper.Process.Kill()
			_ = helper.Wait()
		}
	})
	// Into the unit, as systemd starts a service, before it looks.
	if err := writeCgroupFile(unit, "cgroup.procs", strconv.Itoa(helper.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	rep := readDelegateReport(t, reportR, &stderr)
	t.Logf("helper: delegated %s (%s); tracer %d in %s", rep.Unit, rep.Why, rep.TracerPID, rep.TracerCgroup)
	if rep.Err != "" {
		t.Fatalf("helper: %s\nstderr:\n%s", rep.Err, stderr.String())
	}
	if rep.Unit != unit {
		t.Fatalf("helper found delegated cgroup %q (%s), want %s", rep.Unit, rep.Why, unit)
	}
	rel := func(dir string) string { r, _ := filepath.Rel(mount, dir); return "/" + r }

	leaf := filepath.Join(unit, endpointLeaf)
	if want := rel(leaf); rep.Self != want {
		t.Errorf("helper's cgroup after its first tracer = %s, want %s", rep.Self, want)
	}
	if pids := cgroupProcs(t, unit); len(pids) != 0 {
		t.Errorf("%s still holds processes %v", unit, pids)
	}
	if pids := cgroupProcs(t, leaf); !slices.Contains(pids, helper.Process.Pid) {
		t.Errorf("%s holds %v, not the endpoint %d", leaf, pids, helper.Process.Pid)
	}
	tracers := filepath.Join(unit, tracersDir)
	wantCg := filepath.Join(tracers, delegateParent, name)
	if rep.TracerCgroup != wantCg {
		t.Fatalf("tracer cgroup %q, want %s", rep.TracerCgroup, wantCg)
	}
	if pids := cgroupProcs(t, wantCg); !slices.Contains(pids, rep.TracerPID) {
		t.Errorf("%s holds %v, not the tracer %d", wantCg, pids, rep.TracerPID)
	}
	if got := procCgroupLine(t, rep.TracerPID, "0:"); got != rel(wantCg) {
		t.Errorf("tracer's own cgroup %s, want %s", got, rel(wantCg))
	}

	// Limits: in cgroup v2, with the controllers enabled through the unit;
	// on a hybrid host in v1 cgroups of their own.
	have, err := readWords(filepath.Join(unit, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.LimitsErr != "" {
		t.Logf("tracer limits: %s", rep.LimitsErr)
	}
	for ctl, want := range map[string]int64{"memory": delegateMemoryMax, "pids": delegatePidsMax} {
		if !have[ctl] {
			if own, err := v1Dir(ctl, "/proc/self/cgroup"); err == nil && rep.LimitsErr == "" {
				v1 := filepath.Join(own, filepath.Base(unit), tracersDir, delegateParent, name)
				if pids := cgroupProcs(t, v1); !slices.Contains(pids, rep.TracerPID) {
					t.Errorf("v1 %s cgroup %s holds %v, not the tracer %d", ctl, v1, pids, rep.TracerPID)
				}
			}
			continue
		}
		for _, dir := range []string{unit, tracers} {
			enabled, err := readWords(filepath.Join(dir, "cgroup.subtree_control"))
			if err != nil || !enabled[ctl] {
				t.Errorf("%s/cgroup.subtree_control lacks %s: %v %v", dir, ctl, enabled, err)
			}
		}
		b, err := os.ReadFile(filepath.Join(wantCg, ctl+".max"))
		if got := strings.TrimSpace(string(b)); err != nil || got != strconv.FormatInt(want, 10) {
			t.Errorf("%s.max of the tracer = %q, %v; want %d", ctl, got, err, want)
		}
	}

	// The end of a systemd stop: SIGKILL to whatever is left in the unit.
	pidfd, err := unix.PidfdOpen(rep.TracerPID, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", rep.TracerPID, err)
	}
	defer unix.Close(pidfd)
	killUnit(t, unit)
	err = helper.Wait()
	waited = true
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("helper ended with %v, want SIGKILL", err)
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(patience/time.Millisecond))
	if err != nil || n != 1 {
		t.Fatalf("tracer %d still alive %s after the unit was killed: %v", rep.TracerPID, patience, err)
	}
}

// readDelegateReport reads the helper's report, failing when none comes.
func readDelegateReport(t *testing.T, r io.Reader, stderr *bytes.Buffer) delegateReport {
	t.Helper()
	type result struct {
		rep delegateReport
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		res.err = json.NewDecoder(r).Decode(&res.rep)
		ch <- res
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading the helper's report: %v\nstderr:\n%s", res.err, stderr.String())
		}
		return res.rep
	case <-time.After(patience):
		t.Fatalf("no report from the helper in %s", patience)
		return delegateReport{}
	}
}

// killUnit kills every process in dir and below: cgroup.kill, or on
// kernels without it each listed process.
func killUnit(t *testing.T, dir string) {
	t.Helper()
	err := writeCgroupFile(dir, "cgroup.kill", "1")
	if err == nil {
		return
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return (&cgroup{dir: path, fd: -1}).signal(syscall.SIGKILL, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func cgroupProcs(t *testing.T, dir string) []int {
	t.Helper()
	pids, err := (&cgroup{dir: dir, fd: -1}).procs()
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// procCgroupLine returns the path of the /proc/<pid>/cgroup line whose
// hierarchy id is prefix ("0:" for cgroup v2).
func procCgroupLine(t *testing.T, pid int, prefix string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			_, path, _ := strings.Cut(rest, ":")
			return path
		}
	}
	t.Fatalf("no %q line in /proc/%d/cgroup:\n%s", prefix, pid, b)
	return ""
}

// TestDelegatedLayoutHelper is the endpoint stand-in of TestDelegatedLayout
// and does nothing unless run as that test's helper process: once told to
// go (its parent has moved it into the unit), it starts one tracer the way
// the endpoint does, reports on fd 3, and waits to be killed.
func TestDelegatedLayoutHelper(t *testing.T) {
	if os.Getenv(delegateHelperEnv) != "1" {
		return
	}
	report := os.NewFile(3, "report")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	var rep delegateReport
	h, err := ownHome()
	rep.Unit, rep.Why = h.unit, h.why
	if err == nil {
		var p *Process
		p, err = Start(context.Background(), Command{
			Path:         os.Getenv(delegateFakeEnv),
			Script:       os.Getenv(delegateScriptEnv),
			Name:         os.Getenv(delegateNameEnv),
			CgroupParent: delegateParent,
			MemoryMax:    delegateMemoryMax,
			PidsMax:      delegatePidsMax,
		})
		if err == nil {
			rep.TracerPID, rep.TracerCgroup = p.PID(), p.CgroupDir()
			if p.LimitsErr() != nil {
				rep.LimitsErr = p.LimitsErr().Error()
			}
			if p.ContainErr() != nil {
				err = p.ContainErr()
			}
		}
	}
	if err != nil {
		rep.Err = err.Error()
	}
	if b, rerr := os.ReadFile("/proc/self/cgroup"); rerr == nil {
		rep.Self, _ = parseOwnCgroup2(bytes.NewReader(b))
	}
	if err := json.NewEncoder(report).Encode(rep); err != nil {
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, in) // until the parent kills it
	os.Exit(0)
}
