//go:build linux

package tracer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	cgroup2Magic        = 0x63677270 // CGROUP2_SUPER_MAGIC
	cgroupRemoveTimeout = 5 * time.Second
	cgroupRetryInterval = 10 * time.Millisecond
)

// errNoCgroup2 means /proc/self/mountinfo lists no cgroup2 file system.
var errNoCgroup2 = errors.New("no cgroup2 file system mounted")

// resolveCgroupParent returns the parent directory for per-trace cgroups, or
// "" when cgroups are disabled ("-").
func resolveCgroupParent(parent string) (string, error) {
	switch parent {
	case "-":
		return "", nil
	case "":
		mount, err := cgroup2Mount()
		if err != nil {
			return "", err
		}
		return filepath.Join(mount, DefaultCgroupDir), nil
	}
	if filepath.IsAbs(parent) {
		return filepath.Clean(parent), nil
	}
	// Relative: below the cgroup2 mount, e.g. "lambda-endpoint/<instance>".
	if !filepath.IsLocal(parent) {
		return "", fmt.Errorf("checking cgroup parent %q: a relative parent must stay below the cgroup2 mount", parent)
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(mount, parent), nil
}

// cgroup2Mount returns where this process sees the cgroup2 file system.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("finding cgroup2 mount: %w", err)
	}
	defer f.Close()
	mount, err := parseCgroup2Mount(f)
	if err != nil {
		return "", fmt.Errorf("finding cgroup2 mount: %w", err)
	}
	return mount, nil
}

// parseCgroup2Mount returns the mount point of the first cgroup2 file system
// in a /proc/<pid>/mountinfo listing.
func parseCgroup2Mount(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fsType, _, _ := strings.Cut(post, " ")
		fields := strings.Fields(pre)
		if fsType != "cgroup2" || len(fields) < 5 {
			continue
		}
		mount := unescapeMountinfo(fields[4])
		if !filepath.IsAbs(mount) {
			continue
		}
		return filepath.Clean(mount), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading mountinfo: %w", err)
	}
	return "", errNoCgroup2
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkCgroup2 fails unless dir lies on a cgroup2 file system.
func checkCgroup2(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("checking cgroup parent %s: %w", dir, err)
	}
	if st.Type != cgroup2Magic {
		return fmt.Errorf("checking cgroup parent %s: not on a cgroup2 file system", dir)
	}
	return nil
}

// cgroup is one per-trace cgroup v2 directory, or one cgroup v1 directory
// carrying a limit.
type cgroup struct {
	dir string
	fd  int       // open directory for CLONE_INTO_CGROUP, -1 once closed
	ctl string    // v1 only: the controller of the hierarchy
	v1  []*cgroup // v2 only: the v1 cgroups carrying its limits, if any
}

// createCgroup makes parent (if needed) and parent/name, and opens the new
// directory for CLONE_INTO_CGROUP.
func createCgroup(parent, name string) (*cgroup, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup parent %s: %w", parent, err)
	}
	if err := checkCgroup2(parent); err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = syscall.Rmdir(dir)
		return nil, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	return &cgroup{dir: dir, fd: fd}, nil
}

// closeFD closes the directory descriptor once the child is started.
func (c *cgroup) closeFD() {
	if c.fd >= 0 {
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
}

// kill SIGKILLs every process in the cgroup and its descendants through
// cgroup.kill, or signals the listed processes on kernels without it.
func (c *cgroup) kill() error {
	f, err := os.OpenFile(filepath.Join(c.dir, "cgroup.kill"), os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(c.dir); statErr != nil {
			return nil // the cgroup itself is gone
		}
		return c.signal(syscall.SIGKILL, 0) // kernel before 5.14
	}
	if err != nil {
		return fmt.Errorf("killing cgroup %s: %w", c.dir, err)
	}
	defer f.Close()
	if _, err := f.WriteString("1"); err != nil {
		return fmt.Errorf("killing cgroup %s: %w", c.dir, err)
	}
	return nil
}

// signal sends sig to every process listed in cgroup.procs except members
// of process group skipPgid (0 skips none). A pid may exit between the read
// and the kill; such a pid is skipped.
func (c *cgroup) signal(sig syscall.Signal, skipPgid int) error {
	pids, err := c.procs()
	if err != nil {
		return err
	}
	self := os.Getpid() // a v1 cgroup lists it while the forking thread is in it
	for _, pid := range pids {
		if pid == self {
			continue
		}
		if pg, err := syscall.Getpgid(pid); err != nil || (skipPgid != 0 && pg == skipPgid) {
			continue
		}
		_ = syscall.Kill(pid, sig)
	}
	return nil
}

// procs lists the pids in cgroup.procs.
func (c *cgroup) procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("listing cgroup %s: %w", c.dir, err)
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// remove deletes the (childless) cgroup directory and its v1 limit
// cgroups, killing what is still in them and retrying while the kernel
// reports one busy, for a few seconds at most. A cgroup that is already gone
// is not an error.
func (c *cgroup) remove() error {
	c.closeFD()
	errs := []error{c.removeDir()}
	for _, v1 := range c.v1 {
		errs = append(errs, v1.removeDir())
	}
	return errors.Join(errs...)
}

func (c *cgroup) removeDir() error {
	deadline := time.Now().Add(cgroupRemoveTimeout)
	for {
		err := syscall.Rmdir(c.dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", c.dir, err)
		}
		_ = c.kill()
		time.Sleep(cgroupRetryInterval)
	}
}

// Cleanup kills every process in the per-trace cgroups left under parent
// (resolved like Command.CgroupParent) and removes those cgroups; parent
// itself stays. It is meant for endpoint start, after a crash left traces
// behind, and must not run while this endpoint (or another one sharing
// parent) has tracers running. With cgroups disabled ("-"), no cgroup2
// mount, or no parent directory yet, there is nothing to do. The cgroup v1
// limit cgroups below the endpoint's own v1 cgroups (hybrid hosts) are
// removed as well.
func Cleanup(parent string) error {
	dir, err := resolveCgroupParent(parent)
	if errors.Is(err, errNoCgroup2) || (err == nil && dir == "") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning up cgroups: %w", err)
	}
	if err := cleanupV1(dir); err != nil {
		return fmt.Errorf("cleaning up cgroups: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning up cgroups: %w", err)
	}
	if err := checkCgroup2(dir); err != nil {
		return fmt.Errorf("cleaning up cgroups: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleaning up cgroups: %w", err)
	}
	return nil
}

// removeCgroupTree kills everything in dir and below and removes the
// directories bottom-up.
func removeCgroupTree(dir string) error {
	c := &cgroup{dir: dir, fd: -1}
	errs := []error{c.kill()}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("reading cgroup %s: %w", dir, err))
	}
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(dir, e.Name())))
		}
	}
	errs = append(errs, c.remove())
	return errors.Join(errs...)
}

// RemoveCgroupParent removes the cgroup parent directory (resolved like
// Command.CgroupParent) if it is empty, as an endpoint does when it stops:
// the per-trace cgroups below it are gone once their tracers are. A parent
// that still has cgroups, is missing, or is disabled ("-") is left alone.
func RemoveCgroupParent(parent string) error {
	dir, err := resolveCgroupParent(parent)
	if errors.Is(err, errNoCgroup2) || (err == nil && dir == "") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing cgroup parent: %w", err)
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) &&
		!errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("removing cgroup parent %s: %w", dir, err)
	}
	if err := removeV1Parents(dir); err != nil {
		return fmt.Errorf("removing cgroup parent: %w", err)
	}
	return nil
}
