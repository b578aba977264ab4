//go:build linux

package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Hybrid hosts (cgroup2 mounted next to cgroup v1 hierarchies) keep the
// memory and pids controllers on v1. The tracer's limits then live in v1
// cgroups of their own, nested below the endpoint's own v1 cgroup of that
// controller (so the host's or sandbox's limits still apply):
//
//	<v1 mount>/<endpoint's v1 path>/<v2 parent below the cgroup2 mount>/<name>
//
// The v2 cgroup stays the one that kills the whole tree (cgroup.kill); the
// v1 cgroups only carry the limits.

// v1Mount returns the mount point of the cgroup v1 hierarchy that has
// controller ctl, and the hierarchy path mounted there ("/" normally).
func v1Mount(ctl string) (mount, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("finding cgroup v1 %s mount: %w", ctl, err)
	}
	defer f.Close()
	mount, root, err = parseV1Mount(f, ctl)
	if err != nil {
		return "", "", fmt.Errorf("finding cgroup v1 %s mount: %w", ctl, err)
	}
	return mount, root, nil
}

// errNoV1Mount means mountinfo lists no cgroup v1 hierarchy with the
// controller.
var errNoV1Mount = errors.New("no cgroup v1 hierarchy with this controller mounted")

// parseV1Mount finds the first cgroup (v1) mount whose super options name
// controller ctl in a /proc/<pid>/mountinfo listing.
func parseV1Mount(r io.Reader, ctl string) (mount, root string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(postFields) < 3 || postFields[0] != "cgroup" {
			continue
		}
		if !contains(strings.Split(postFields[2], ","), ctl) {
			continue
		}
		mount, root = unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3])
		if !filepath.IsAbs(mount) || !filepath.IsAbs(root) {
			continue
		}
		return filepath.Clean(mount), filepath.Clean(root), nil
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading mountinfo: %w", err)
	}
	return "", "", errNoV1Mount
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// parseV1Path returns the v1 cgroup path of controller ctl in a
// /proc/<pid>/cgroup listing ("4:memory:/process_api/x").
func parseV1Path(r io.Reader, ctl string) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[0] == "0" || !contains(strings.Split(parts[1], ","), ctl) {
			continue
		}
		if !filepath.IsAbs(parts[2]) {
			break
		}
		return filepath.Clean(parts[2]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading cgroup membership: %w", err)
	}
	return "", fmt.Errorf("no cgroup v1 %s membership listed", ctl)
}

// v1Dir returns the directory of the v1 cgroup of controller ctl that the
// task described by procFile ("/proc/self/cgroup",
// "/proc/thread-self/cgroup") belongs to.
func v1Dir(ctl, procFile string) (string, error) {
	dir, _, err := v1Own(ctl, procFile)
	return dir, err
}

// v1Own is v1Dir, also returning the cgroup's path as procFile lists it.
func v1Own(ctl, procFile string) (dir, path string, err error) {
	mount, root, err := v1Mount(ctl)
	if err != nil {
		return "", "", err
	}
	f, err := os.Open(procFile)
	if err != nil {
		return "", "", fmt.Errorf("finding own cgroup v1 %s: %w", ctl, err)
	}
	defer f.Close()
	path, err = parseV1Path(f, ctl)
	if err != nil {
		return "", "", fmt.Errorf("finding own cgroup v1 %s: %w", ctl, err)
	}
	dir, err = v1DirOf(ctl, mount, root, path)
	return dir, path, err
}

// v1DirOf returns the directory of the v1 cgroup path of controller ctl in
// the hierarchy part root mounted at mount.
func v1DirOf(ctl, mount, root, path string) (string, error) {
	rel, err := filepath.Rel(root, path)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("finding own cgroup v1 %s: %s is outside the mounted hierarchy %s", ctl, path, root)
	}
	return filepath.Join(mount, rel), nil
}

// v1Parent returns where the per-trace v1 cgroups of controller ctl go for
// the v2 parent dir: the endpoint's own v1 cgroup of ctl, then dir's path
// below the cgroup2 mount (or dir's last element when dir lies elsewhere).
// In a delegated unit that systemd mirrors in the v1 hierarchy (the own v1
// cgroup is the unit's, as on hybrid hosts), dir's path below the unit
// instead: <v1 mount>/system.slice/x.service/tracers/...
func v1Parent(dir, ctl string) (string, error) {
	own, ownPath, err := v1Own(ctl, "/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	h, err := ownHome()
	if err != nil {
		h = cgroupHome{}
	}
	return filepath.Join(own, v1Name(h, ownPath, dir)), nil
}

// v1Name is the path below the endpoint's own v1 cgroup (listed as
// ownPath) that mirrors the v2 parent dir; see v1Parent.
func v1Name(h cgroupHome, ownPath, dir string) string {
	if h.unit != "" && ownPath == h.own && below(h.unit, dir) {
		rel, _ := filepath.Rel(h.unit, dir)
		return rel
	}
	if h.mount != "" {
		if rel, err := filepath.Rel(h.mount, dir); err == nil && filepath.IsLocal(rel) {
			return rel
		}
	}
	return filepath.Base(dir)
}

// v2Has reports whether the cgroup2 root offers controller ctl.
func v2Has(ctl string) bool {
	mount, err := cgroup2Mount()
	if err != nil {
		return false
	}
	have, err := readWords(filepath.Join(mount, "cgroup.controllers"))
	return err == nil && have[ctl]
}

// createV1 makes the v1 cgroup of controller ctl for the v2 cgroup dir.
func createV1(dir, ctl string) (*cgroup, error) {
	parent, err := v1Parent(filepath.Dir(dir), ctl)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup v1 parent %s: %w", parent, err)
	}
	v1 := filepath.Join(parent, filepath.Base(dir))
	if err := os.Mkdir(v1, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", v1, err)
	}
	return &cgroup{dir: v1, fd: -1, ctl: ctl}, nil
}

// enterV1 moves the calling OS thread (locked, about to fork the tracer)
// into cg's v1 limit cgroups, so that the child is born in them: cgroup v1
// cannot clone into a cgroup. It returns a function that moves the thread
// back, to be called as soon as the child is started, and the v1 cgroups
// the child must be moved into after its start instead (see below).
//
// The memory controller charges a process's pages to the cgroup of its
// thread group leader and picks its OOM victims among leaders, so a
// non-leader thread in the tracer's memory cgroup is harmless; the leader
// there would have the endpoint's pages charged to the tracer and the
// endpoint itself chosen should the tracer hit its limit before the thread
// left. On the leader thread, the memory cgroup is therefore entered by the
// child's pid right after its start (until then, microseconds after its
// exec, its pages are charged to the endpoint's cgroup).
func (cg *cgroup) enterV1() (leave func() error, late []*cgroup, err error) {
	tid := strconv.Itoa(syscall.Gettid())
	leader := syscall.Gettid() == os.Getpid()
	var homes []string
	leave = func() error {
		var errs []error
		for _, home := range homes {
			if err := writeCgroupFile(home, "tasks", tid); err != nil {
				errs = append(errs, fmt.Errorf("leaving tracer cgroup: %w", err))
			}
		}
		return errors.Join(errs...)
	}
	for _, v1 := range cg.v1 {
		if leader && v1.ctl == "memory" {
			late = append(late, v1)
			continue
		}
		home, err := v1Dir(v1.ctl, "/proc/thread-self/cgroup")
		if err != nil {
			return nil, nil, errors.Join(err, leave())
		}
		if err := writeCgroupFile(v1.dir, "tasks", tid); err != nil {
			return nil, nil, errors.Join(err, leave())
		}
		homes = append(homes, home)
	}
	return leave, late, nil
}

// v1OOMKilled reports whether the kernel OOM-killed a task of a v1 memory
// cgroup: oom_kill of memory.oom_control, or, on kernels without that
// line, a hit limit (memory.failcnt or memory.memsw.failcnt) together with a
// SIGKILLed tracer.
func v1OOMKilled(dir string, killed bool) bool {
	b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n > 0
		}
	}
	if !killed {
		return false
	}
	for _, name := range []string{"memory.failcnt", "memory.memsw.failcnt"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// cleanupV1 removes the per-trace v1 cgroups left below the v1 parents of
// the v2 parent dir; removeV1Parents removes those parents when empty.
func cleanupV1(dir string) error {
	var errs []error
	for _, ctl := range []string{"memory", "pids"} {
		if v2Has(ctl) {
			continue
		}
		parent, err := v1Parent(dir, ctl)
		if err != nil {
			continue // no such v1 hierarchy: nothing was created there
		}
		entries, err := os.ReadDir(parent)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading cgroup %s: %w", parent, err))
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				errs = append(errs, removeCgroupTree(filepath.Join(parent, e.Name())))
			}
		}
	}
	return errors.Join(errs...)
}

// removeV1Parents removes the v1 parents of the v2 parent dir, and their
// empty parents up to those of stop (see removeEmpty).
func removeV1Parents(dir, stop string) error {
	var errs []error
	for _, ctl := range []string{"memory", "pids"} {
		if v2Has(ctl) {
			continue
		}
		parent, err := v1Parent(dir, ctl)
		if err != nil {
			continue
		}
		v1Stop, err := v1Parent(stop, ctl)
		if err != nil || !below(v1Stop, parent) || v1Stop == parent {
			v1Stop = filepath.Dir(parent)
		}
		errs = append(errs, removeEmpty(parent, v1Stop))
	}
	return errors.Join(errs...)
}
