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

// applyLimits enables the memory and pids controllers for the children of
// cg's parent (cgroup.subtree_control, and the same one level up when the
// parent lacks them) and writes memory.max and pids.max of cg.
func applyLimits(cg *cgroup, c Command) error {
	parent := filepath.Dir(cg.dir)
	var want []string
	if c.MemoryMax > 0 {
		want = append(want, "memory")
	}
	if c.PidsMax > 0 {
		want = append(want, "pids")
	}
	if err := enableControllers(parent, want); err != nil {
		return err
	}
	if c.MemoryMax > 0 {
		if err := writeCgroupFile(cg.dir, "memory.max", strconv.FormatInt(c.MemoryMax, 10)); err != nil {
			return err
		}
		// No swap either, where swap accounting exists: the limit is the
		// tracer's whole memory.
		_ = writeCgroupFile(cg.dir, "memory.swap.max", "0")
	}
	if c.PidsMax > 0 {
		if err := writeCgroupFile(cg.dir, "pids.max", strconv.FormatInt(c.PidsMax, 10)); err != nil {
			return err
		}
	}
	return nil
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
