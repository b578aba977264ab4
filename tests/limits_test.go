package tests

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kernelLacksLimitController names the memory or pids controller when the
// kernel has none (/proc/cgroups), or returns "".
func kernelLacksLimitController() string {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return "memory"
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		// #subsys_name hierarchy num_cgroups enabled
		if f := strings.Fields(line); len(f) == 4 && f[3] == "1" {
			have[f[0]] = true
		}
	}
	for _, ctl := range []string{"memory", "pids"} {
		if !have[ctl] {
			return ctl
		}
	}
	return ""
}

// cgroupLimitsAvailable reports whether the memory and pids controllers,
// which tracer-memory-max and tracer-pids-max need, are each offered by
// the cgroup2 root or mounted as a cgroup v1 hierarchy (hybrid hosts).
func cgroupLimitsAvailable() bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	have := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(postFields) < 3 {
			continue
		}
		switch postFields[0] {
		case "cgroup2":
			b, err := os.ReadFile(filepath.Join(fields[4], "cgroup.controllers"))
			if err == nil {
				for _, ctl := range strings.Fields(string(b)) {
					have[ctl] = true
				}
			}
		case "cgroup":
			for _, ctl := range strings.Split(postFields[2], ",") {
				have[ctl] = true
			}
		}
	}
	return have["memory"] && have["pids"]
}

// requireCgroupLimits skips loudly, even in CI, when the kernel lacks a
// controller (a kernel feature, not an installable component); a kernel
// that has them but mounts them nowhere fails in CI and skips otherwise.
func requireCgroupLimits(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if ctl := kernelLacksLimitController(); ctl != "" {
		t.Skipf("SKIPPING: KERNEL FEATURE MISSING: this kernel has no %s cgroup controller (in neither cgroup v1 nor v2)", ctl)
	}
	if !cgroupLimitsAvailable() {
		if inCI() {
			t.Fatal("the memory and pids controllers are mounted in neither cgroup v2 nor cgroup v1 (CI=true)")
		}
		t.Skip("SKIPPING: the memory and pids controllers are mounted in neither cgroup v2 nor cgroup v1 here")
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
		t.Skip("SKIPPING: this host has the controllers (cgroup v2 or v1); TestTracerMemoryLimit covers it")
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
