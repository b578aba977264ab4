package tests

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgroupLimitsAvailable reports whether the cgroup2 root offers the memory
// and pids controllers, which tracer-memory-max and tracer-pids-max need.
func cgroupLimitsAvailable() bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || !strings.HasPrefix(post, "cgroup2 ") || len(fields) < 5 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(fields[4], "cgroup.controllers"))
		have := " " + strings.TrimSpace(string(b)) + " "
		return err == nil && strings.Contains(have, " memory ") && strings.Contains(have, " pids ")
	}
	return false
}

func requireCgroupLimits(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if !cgroupLimitsAvailable() {
		if inCI() {
			t.Fatal("the memory and pids controllers are not available in cgroup v2 (CI=true)")
		}
		t.Skip("SKIPPING: the memory and pids controllers are not available in cgroup v2 here (hybrid cgroup v1 host?)")
	}
}

// TestTracerMemoryLimit: a tracer over tracer-memory-max is killed, its
// trace ends with reason memory-limit, and the endpoint runs the next one.
func TestTracerMemoryLimit(t *testing.T) {
	requireCgroupLimits(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(),
		Extra: "tracer-memory-max = 67108864\ntracer-limits = \"required\""})
	hog := e.putTemplate(fakeTemplate("alloc 256"))
	s := e.start("BPF", hog, 30)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if rec.Finished.Reason != "memory-limit" || rec.Finished.Code != 137 {
		t.Errorf("over the memory limit: finished %+v, want reason memory-limit, code 137", rec.Finished)
	}
	ok := e.putTemplate(fakeTemplate("alloc 16"))
	s = e.start("BPF", ok, 30)
	if rec := waitFinished(t, p, s.FilePath, 60*time.Second); rec.Finished.Reason != "completed" || rec.Finished.Code != 0 {
		t.Errorf("the next trace: finished %+v", rec.Finished)
	}
}

// TestTracerLimitsDefaultRealBpftrace: the default limits (512 MiB, 64
// tasks) leave a real bpftrace trace working.
func TestTracerLimitsDefaultRealBpftrace(t *testing.T) {
	bt := requireBpftrace(t)
	requireCgroupLimits(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), BPFPath: bt,
		Extra: "tracer-limits = \"required\""})
	id := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc","xfree"],"traceType":"BPF"}`)
	s := e.start("BPF", id, 2)
	if rec := waitFinished(t, p, s.FilePath, 60*time.Second); rec.Finished.Reason != "completed" || rec.Finished.Code != 0 {
		t.Errorf("real bpftrace under the default limits: finished %+v", rec.Finished)
	}
}

// TestTracerLimitsRequiredWithoutControllers: on a host without the
// controllers, "required" ends a started trace failed-to-start naming the
// missing controller, and "best-effort" (the default) still runs it.
func TestTracerLimitsRequiredWithoutControllers(t *testing.T) {
	requireRoot(t)
	if cgroupLimitsAvailable() {
		t.Skip("SKIPPING: this host has the controllers; TestTracerMemoryLimit covers it")
	}
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(),
		Extra: "tracer-limits = \"required\""})
	s := e.start("BPF", e.putTemplate(fakeTemplate("exit 0")), 30)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if rec.Finished.Reason != "failed-to-start" || !strings.Contains(rec.Finished.Stderr, "limits unavailable") {
		t.Errorf("required limits without controllers: finished %+v", rec.Finished)
	}

	p2 := newPlatform(t)
	e2 := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p2.URL()})
	s = e2.start("BPF", e2.putTemplate(fakeTemplate("exit 0")), 30)
	if rec := waitFinished(t, p2, s.FilePath, 60*time.Second); rec.Finished.Reason != "completed" {
		t.Errorf("best-effort limits without controllers: finished %+v", rec.Finished)
	}
}
