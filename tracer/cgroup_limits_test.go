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

// limitControllers reports whether the memory and pids controllers can be
// used below parent (they are listed in the cgroup2 root's controllers).
func limitControllers(t *testing.T, parent string) bool {
	t.Helper()
	mount, err := cgroup2Mount()
	if err != nil {
		return false
	}
	have, err := readWords(filepath.Join(mount, "cgroup.controllers"))
	return err == nil && have["memory"] && have["pids"]
}

// requireLimits skips loudly (fails in CI) without the controllers.
func requireLimits(t *testing.T, parent string) {
	t.Helper()
	requireCgroup(t, parent)
	if !limitControllers(t, parent) {
		if os.Getenv("CI") == "true" {
			t.Fatal("the memory and pids controllers are not available in cgroup v2 here; CI must provide them")
		}
		t.Skip("SKIPPING: the memory and pids controllers are not available in cgroup v2 here (hybrid cgroup v1 host?)")
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
	if limitControllers(t, parent) {
		t.Skip("SKIPPING: this host has the controllers; TestMemoryLimitKillsTracer covers it")
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
