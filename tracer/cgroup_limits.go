//go:build linux

package tracer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// limitsWanted reports whether c asks for any resource limit.
func (c Command) limitsWanted() bool { return c.MemoryMax > 0 || c.PidsMax > 0 }

// applyLimits sets cg's memory and pids limits. A controller that the
// cgroup2 root offers is enabled for the children of cg's parent
// (cgroup.subtree_control, and the same one level up when the parent lacks
// it) and gets memory.max or pids.max in cg. A controller that cgroup v2
// lacks (hybrid hosts) gets a v1 cgroup of its own, below the endpoint's
// own v1 cgroup of that controller, with memory.limit_in_bytes or pids.max;
// the tracer is forked inside it (see enterV1).
func applyLimits(cg *cgroup, c Command) error {
	parent := filepath.Dir(cg.dir)
	type limit struct {
		ctl   string
		value int64
	}
	var v2, v1 []limit
	for _, l := range []limit{{"memory", c.MemoryMax}, {"pids", c.PidsMax}} {
		switch {
		case l.value <= 0:
		case v2Has(l.ctl):
			v2 = append(v2, l)
		default:
			v1 = append(v1, l)
		}
	}
	var want []string
	for _, l := range v2 {
		want = append(want, l.ctl)
	}
	if err := enableControllers(parent, want); err != nil {
		return err
	}
	for _, l := range v2 {
		if err := writeCgroupFile(cg.dir, l.ctl+".max", strconv.FormatInt(l.value, 10)); err != nil {
			return err
		}
		if l.ctl == "memory" {
			// No swap either, where swap accounting exists: the
			// limit is the tracer's whole memory.
			_ = writeCgroupFile(cg.dir, "memory.swap.max", "0")
		}
	}
	for _, l := range v1 {
		v1cg, err := createV1(cg.dir, l.ctl)
		if err != nil {
			return fmt.Errorf("using cgroup v1 for the %s limit (the %s controller is not available in cgroup v2 here): %w", l.ctl, l.ctl, err)
		}
		cg.v1 = append(cg.v1, v1cg)
		value := strconv.FormatInt(l.value, 10)
		switch l.ctl {
		case "memory":
			if err := writeCgroupFile(v1cg.dir, "memory.limit_in_bytes", value); err != nil {
				return err
			}
			// Memory plus swap, where swap accounting exists.
			if _, err := os.Stat(filepath.Join(v1cg.dir, "memory.memsw.limit_in_bytes")); err == nil {
				if err := writeCgroupFile(v1cg.dir, "memory.memsw.limit_in_bytes", value); err != nil {
					return err
				}
			}
		case "pids":
			if err := writeCgroupFile(v1cg.dir, "pids.max", value); err != nil {
				return err
			}
		}
	}
	return nil
}

// oomKilled reports whether the kernel killed a process of cg for going
// over its memory limit; killed tells that the tracer died of SIGKILL.
func (cg *cgroup) oomKilled(killed bool) bool {
	if oomKills(cg.dir) > 0 {
		return true
	}
	for _, v1 := range cg.v1 {
		if v1.ctl == "memory" && v1OOMKilled(v1.dir, killed) {
			return true
		}
	}
	return false
}

// enableControllers makes the controllers want available to the children
// of dir, enabling them in dir's parent first where dir lacks them.
func enableControllers(dir string, want []string) error {
	have, err := readWords(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("enabling controllers in %s: %w", dir, err)
	}
	for _, ctl := range want {
		if !have[ctl] {
			up := filepath.Dir(dir)
			if up == dir || checkCgroup2(up) != nil { // dir is the cgroup2 root
				return fmt.Errorf("enabling controllers in %s: the %s controller is not available in cgroup v2 here", dir, ctl)
			}
			if h, err := ownHome(); err == nil && h.unit != "" && filepath.Clean(dir) == filepath.Clean(h.unit) {
				// Above the delegated unit is systemd's, never written.
				return fmt.Errorf("enabling controllers in %s: the %s controller is not delegated to the unit", dir, ctl)
			}
			if err := enableControllers(up, []string{ctl}); err != nil {
				return err
			}
			if err := writeCgroupFile(up, "cgroup.subtree_control", "+"+ctl); err != nil {
				return err
			}
		}
	}
	enabled, err := readWords(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("enabling controllers in %s: %w", dir, err)
	}
	for _, ctl := range want {
		if !enabled[ctl] {
			if err := writeCgroupFile(dir, "cgroup.subtree_control", "+"+ctl); err != nil {
				return err
			}
		}
	}
	return nil
}

// readWords returns the space-separated words of a cgroup file as a set.
func readWords(file string) (map[string]bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, w := range strings.Fields(string(b)) {
		set[w] = true
	}
	return set, nil
}

func writeCgroupFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		return fmt.Errorf("setting %s of cgroup %s to %s: %w", name, dir, value, err)
	}
	return nil
}

// oomKills returns the oom_kill count of memory.events in dir (0 when it
// cannot be read: no memory controller).
func oomKills(dir string) int64 {
	f, err := os.Open(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
