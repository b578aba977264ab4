//go:build linux

package tracer

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kernelControllers returns the controllers the kernel has enabled
// (/proc/cgroups), whichever cgroup version they are mounted in.
func kernelControllers(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		t.Fatalf("reading the kernel's controllers: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		// #subsys_name hierarchy num_cgroups enabled
		if f := strings.Fields(line); len(f) == 4 && f[3] == "1" {
			have[f[0]] = true
		}
	}
	return have
}

// limitControllers reports whether the memory and pids controllers are
// each offered by the cgroup2 root or mounted as a cgroup v1 hierarchy.
func limitControllers(t *testing.T) bool {
	t.Helper()
	for _, ctl := range []string{"memory", "pids"} {
		if _, _, err := v1Mount(ctl); !v2Has(ctl) && err != nil {
			return false
		}
	}
	return true
}

// requireLimits skips, loudly and even in CI, when the kernel lacks the
// memory or pids controller (a kernel feature, not an installable
// component). Otherwise the limits must work, in cgroup v2 or v1.
func requireLimits(t *testing.T, parent string) {
	t.Helper()
	requireCgroup(t, parent)
	have := kernelControllers(t)
	for _, ctl := range []string{"memory", "pids"} {
		if !have[ctl] {
			t.Skipf("SKIPPING: KERNEL FEATURE MISSING: this kernel has no %s cgroup controller (CONFIG_MEMCG / CONFIG_CGROUP_PIDS, or disabled at boot), in neither cgroup v1 nor v2", ctl)
		}
	}
}

func lastJSON(t *testing.T, out []byte) map[string]any {
	t.Helper()
	var m map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m = nil
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
	}
	return m
}

func TestMemoryLimitKillsTracer(t *testing.T) {
	parent := testCgroupParent(t)
	requireLimits(t, parent)
	p := startFake(t, "alloc 256", func(c *Command) {
		c.CgroupParent, c.MemoryMax, c.PidsMax, c.LimitsRequired = parent, 64<<20, 64, true
	})
	readAll(t, p, p.Stdout())
	exit := waitExit(t, p)
	if !exit.OOMKilled || !exit.Signaled || exit.Code != 128+9 {
		t.Errorf("exit = %+v, want killed by the memory limit (OOMKilled, code 137)", exit)
	}
	// The same limit leaves a tracer under it alone.
	p = startFake(t, "alloc 16", func(c *Command) {
		c.CgroupParent, c.MemoryMax, c.PidsMax, c.LimitsRequired = parent, 64<<20, 64, true
	})
	out := readAll(t, p, p.Stdout())
	if exit := waitExit(t, p); exit.OOMKilled || exit.Code != 0 {
		t.Errorf("tracer under the limit: exit %+v", exit)
	}
	if m := lastJSON(t, out); m["allocated"] != float64(16) {
		t.Errorf("tracer under the limit printed %s", out)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	parent := testCgroupParent(t)
	requireLimits(t, parent)
	p := startFake(t, "forkbomb 200", func(c *Command) {
		c.CgroupParent, c.MemoryMax, c.PidsMax, c.LimitsRequired = parent, 256<<20, 16, true
	})
	out := readAll(t, p, p.Stdout())
	if exit := waitExit(t, p); exit.Code != 0 {
		t.Fatalf("exit %+v", exit)
	}
	m := lastJSON(t, out)
	started, _ := m["started"].(float64)
	refused, _ := m["refused"].(float64)
	if started >= 16 || refused == 0 {
		t.Errorf("fork bomb under pids.max 16: %s", out)
	}
}

func TestLimitsWithoutControllers(t *testing.T) {
	parent := testCgroupParent(t)
	requireCgroup(t, parent)
	if limitControllers(t) {
		t.Skip("SKIPPING: this host has the controllers (cgroup v2 or v1); TestMemoryLimitKillsTracer covers it")
	}
	c := Command{Path: fakeTracer(t), Script: fakeScript(t, "exit 0"), CgroupParent: parent,
		MemoryMax: 64 << 20, PidsMax: 64, LimitsRequired: true}
	_, err := Start(t.Context(), c)
	if !errors.Is(err, ErrLimitsUnavailable) || !strings.Contains(err.Error(), "controller is not available") {
		t.Fatalf("Start with required limits = %v, want ErrLimitsUnavailable", err)
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("a refused start left cgroup %s", e.Name())
		}
	}
	p := startFake(t, "exit 0", func(c *Command) { c.CgroupParent, c.MemoryMax, c.PidsMax = parent, 64<<20, 64 })
	readAll(t, p, p.Stdout())
	if exit := waitExit(t, p); exit.Code != 0 || !errors.Is(p.LimitsErr(), ErrLimitsUnavailable) {
		t.Errorf("best effort: exit %+v, LimitsErr %v", exit, p.LimitsErr())
	}
}

// TestLimitsPlacement: the tracer and its children are in the cgroups that
// carry the limits from their start (v2, or v1 on hybrid hosts, below the
// endpoint's own v1 cgroup), the limits hold the asked values, the
// endpoint itself is not left in them, and they are gone after the exit.
func TestLimitsPlacement(t *testing.T) {
	parent := testCgroupParent(t)
	requireLimits(t, parent)
	p := startFake(t, "fork 2", func(c *Command) {
		c.CgroupParent, c.MemoryMax, c.PidsMax, c.LimitsRequired = parent, 96<<20, 24, true
	})
	sc := bufio.NewScanner(p.Stdout())
	pids := append(childPids(readUntil(t, sc, "ready")), p.PID())
	type place struct{ ctl, dir, file, value string }
	var places []place
	if v2Has("memory") {
		places = append(places, place{"memory", p.CgroupDir(), "memory.max", "100663296"})
	}
	if v2Has("pids") {
		places = append(places, place{"pids", p.CgroupDir(), "pids.max", "24"})
	}
	for _, v1 := range p.cg.v1 {
		own, err := v1Dir(v1.ctl, "/proc/self/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v1.dir, own+"/") {
			t.Errorf("v1 %s cgroup %s is not below the endpoint's own %s", v1.ctl, v1.dir, own)
		}
		file, value := "pids.max", "24"
		if v1.ctl == "memory" {
			file, value = "memory.limit_in_bytes", "100663296"
		}
		places = append(places, place{v1.ctl, v1.dir, file, value})
	}
	if len(places) != 2 {
		t.Fatalf("limits placed in %+v, want memory and pids", places)
	}
	for _, pl := range places {
		b, err := os.ReadFile(filepath.Join(pl.dir, pl.file))
		if err != nil || strings.TrimSpace(string(b)) != pl.value {
			t.Errorf("%s/%s = %q (%v), want %s", pl.dir, pl.file, b, err, pl.value)
		}
		procs, err := (&cgroup{dir: pl.dir, fd: -1}).procs()
		if err != nil {
			t.Fatal(err)
		}
		in := map[int]bool{}
		for _, pid := range procs {
			in[pid] = true
		}
		if in[os.Getpid()] {
			t.Errorf("the endpoint itself is in %s", pl.dir)
		}
		for _, pid := range pids {
			if !in[pid] {
				t.Errorf("process %d is not in the %s cgroup %s (it has %v)", pid, pl.ctl, pl.dir, procs)
			}
		}
	}
	p.Kill()
	waitExit(t, p)
	for _, pl := range places {
		if _, err := os.Stat(pl.dir); err == nil {
			t.Errorf("cgroup %s left after the exit", pl.dir)
		}
	}
}

func TestParseV1(t *testing.T) {
	const mountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /sandbox /sys/fs/cgroup/mem\040ory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	const procCgroup = `9:name=systemd:/
8:pids:/
4:memory:/process_api/6e01
2:cpu,cpuacct:/a
0::/
`
	tests := []struct {
		ctl, mount, root, path string
		mountErr, pathErr      bool
	}{
		{ctl: "memory", mount: "/sys/fs/cgroup/mem ory", root: "/sandbox", path: "/process_api/6e01"},
		{ctl: "pids", mount: "/sys/fs/cgroup/pids", root: "/", path: "/"},
		{ctl: "cpuacct", mount: "/sys/fs/cgroup/cpu,cpuacct", root: "/", path: "/a"},
		{ctl: "hugetlb", mountErr: true, pathErr: true},
		{ctl: "mem", mountErr: true, pathErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.ctl, func(t *testing.T) {
			mount, root, err := parseV1Mount(strings.NewReader(mountinfo), tt.ctl)
			if (err != nil) != tt.mountErr || mount != tt.mount || root != tt.root {
				t.Errorf("parseV1Mount = %q, %q, %v; want %q, %q", mount, root, err, tt.mount, tt.root)
			}
			path, err := parseV1Path(strings.NewReader(procCgroup), tt.ctl)
			if (err != nil) != tt.pathErr || path != tt.path {
				t.Errorf("parseV1Path = %q, %v; want %q", path, err, tt.path)
			}
		})
	}
}

func FuzzParseV1(f *testing.F) {
	f.Add("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "4:memory:/a\n")
	f.Add("- cgroup\n - \n", "::\n0::/\n")
	f.Fuzz(func(t *testing.T, mountinfo, procCgroup string) {
		if mount, root, err := parseV1Mount(strings.NewReader(mountinfo), "memory"); err == nil &&
			(!filepath.IsAbs(mount) || !filepath.IsAbs(root)) {
			t.Errorf("parseV1Mount = %q, %q: not absolute", mount, root)
		}
		if path, err := parseV1Path(strings.NewReader(procCgroup), "memory"); err == nil && !filepath.IsAbs(path) {
			t.Errorf("parseV1Path = %q: not absolute", path)
		}
	})
}

func TestV1OOMKilled(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		killed bool
		want   bool
	}{
		{"oom_kill counted", map[string]string{"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"}, true, true},
		{"oom_kill zero, limit hit", map[string]string{"memory.oom_control": "oom_kill_disable 0\noom_kill 0\n", "memory.failcnt": "5\n"}, true, false},
		{"old kernel, limit hit, SIGKILL", map[string]string{"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n", "memory.failcnt": "3\n"}, true, true},
		{"old kernel, swap limit hit, SIGKILL", map[string]string{"memory.oom_control": "under_oom 0\n", "memory.failcnt": "0\n", "memory.memsw.failcnt": "2\n"}, true, true},
		{"old kernel, limit hit, other exit", map[string]string{"memory.oom_control": "under_oom 0\n", "memory.failcnt": "3\n"}, false, false},
		{"old kernel, limit never hit", map[string]string{"memory.oom_control": "under_oom 0\n", "memory.failcnt": "0\n"}, true, false},
		{"no memory controller", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := v1OOMKilled(dir, tt.killed); got != tt.want {
				t.Errorf("v1OOMKilled = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCleanupRemovesV1Leftovers: after a crash (the Process forgotten),
// Cleanup also kills and removes the tracer's v1 limit cgroups.
func TestCleanupRemovesV1Leftovers(t *testing.T) {
	parent := testCgroupParent(t)
	requireLimits(t, parent)
	p := startFake(t, "fork 2 setsid", func(c *Command) {
		c.CgroupParent, c.MemoryMax, c.PidsMax, c.LimitsRequired = parent, 96<<20, 24, true
	})
	sc := bufio.NewScanner(p.Stdout())
	ids := identities(t, append(childPids(readUntil(t, sc, "ready")), p.PID()))
	var dirs []string
	for _, v1 := range p.cg.v1 {
		dirs = append(dirs, v1.dir)
	}
	if len(dirs) == 0 && !v2Has("memory") {
		t.Fatal("the tracer got no v1 limit cgroups")
	}
	if err := Cleanup(parent); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("v1 cgroup %s left after Cleanup", dir)
		}
	}
	waitGone(t, ids)
	readAll(t, p, p.Stdout())
	if got := waitExit(t, p); got.Code != 128+9 || got.CleanupErr != nil || got.OOMKilled {
		t.Errorf("forgotten tracer's exit = %+v, want SIGKILL, not OOM", got)
	}
}
