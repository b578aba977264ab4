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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	cgroup2Magic        = 0x63677270 // CGROUP2_SUPER_MAGIC
	cgroupRemoveTimeout = 5 * time.Second
	cgroupRetryInterval = 10 * time.Millisecond
)

// errNoCgroup2 means /proc/self/mountinfo lists no cgroup2 file system.
var errNoCgroup2 = errors.New("no cgroup2 file system mounted")

// Where the tracers' cgroups go when the parent is "" or relative (the
// default, "lambda-endpoint/<hash of the data-dir>", is relative): below a
// base directory, which is
//
//   - <unit>/tracers when the endpoint's own cgroup v2 was delegated to it
//     (a systemd service with Delegate=yes): the tracers then stay inside the
//     unit's cgroup, so KillMode=mixed, systemctl kill and the unit's own
//     limits and accounting reach them. cgroup v2 lets a cgroup enable
//     controllers for its children only while it has no processes of its own,
//     so before the first tracer cgroup is made the endpoint moves itself
//     (and whatever else is in <unit>) into the leaf <unit>/endpoint and
//     enables memory and pids in <unit> and <unit>/tracers:
//
//     <unit>/endpoint                          the endpoint itself
//     <unit>/tracers/lambda-endpoint/<hash>/<trace uuid>   one per tracer
//
//   - otherwise the cgroup2 mount: <mount>/lambda-endpoint/<hash>/<trace uuid>
//     as before, outside any unit.
//
// The own cgroup counts as delegated when it carries systemd's delegation
// mark (the trusted.delegate or user.delegate xattr, set by systemd for
// Delegate=yes units), or, for systemd versions without the mark, when the
// process is a systemd service's main process (INVOCATION_ID set, parent PID
// 1) in a *.service cgroup; in both cases the cgroup must be writable and
// must not be the root of the cgroup2 mount. An absolute parent is used as it
// is.
const (
	endpointLeaf = "endpoint" // the delegated unit's leaf for the endpoint's own processes
	tracersDir   = "tracers"  // the delegated unit's subtree for the tracers' cgroups
)

// cgroupHome is where this process sits in cgroup v2 at its first look.
type cgroupHome struct {
	mount string // where the cgroup2 file system is mounted
	own   string // own cgroup as /proc/self/cgroup names it ("/system.slice/x.service"); "" if unknown
	unit  string // directory of the own cgroup when it is delegated; "" otherwise
	why   string // why it counts as delegated, or why not
}

// base is the directory that "" and relative cgroup parents resolve below.
func (h cgroupHome) base() string {
	if h.unit != "" {
		return filepath.Join(h.unit, tracersDir)
	}
	return h.mount
}

// homeProbe is what findHome asks of the running system beyond the two
// /proc files.
type homeProbe struct {
	getenv   func(string) string
	ppid     int
	marked   func(dir string) string // the delegation xattr set on dir, or ""
	writable func(dir string) bool
}

// errNoOwnCgroup2 means /proc/self/cgroup has no usable cgroup v2 line.
var errNoOwnCgroup2 = errors.New("no cgroup v2 membership listed")

// findHome works out this process's cgroupHome from its /proc/self/cgroup
// and /proc/self/mountinfo listings. It fails (wrapping errNoCgroup2) only
// when no cgroup2 file system is mounted; an own cgroup it cannot place just
// means no delegation.
func findHome(cgroups, mountinfo io.Reader, p homeProbe) (cgroupHome, error) {
	mount, root, err := parseCgroup2MountRoot(mountinfo)
	if err != nil {
		return cgroupHome{}, err
	}
	h := cgroupHome{mount: mount}
	own, err := parseOwnCgroup2(cgroups)
	if err != nil {
		h.why = err.Error()
		return h, nil
	}
	rel, err := filepath.Rel(root, own)
	if err != nil || rel != "." && !filepath.IsLocal(rel) {
		h.why = fmt.Sprintf("own cgroup %s lies outside %s, the part of the hierarchy mounted at %s", own, root, mount)
		return h, nil
	}
	h.own = own
	dir := filepath.Join(mount, rel)
	mark := ""
	if rel != "." {
		mark = p.marked(dir)
	}
	switch {
	case rel == ".":
		h.why = "own cgroup " + own + " is the root of the cgroup2 mount"
	case !p.writable(dir):
		h.why = "own cgroup " + dir + " is not writable"
	case mark != "":
		h.unit, h.why = dir, mark+" is set on own cgroup "+dir
	case p.getenv("INVOCATION_ID") != "" && p.ppid == 1 && strings.HasSuffix(dir, ".service"):
		h.unit, h.why = dir, "systemd service (INVOCATION_ID set, parent PID 1) in the writable cgroup "+dir
	default:
		h.why = "own cgroup " + dir + " carries no delegation mark, and this process is no systemd service's main process"
	}
	return h, nil
}

// parseOwnCgroup2 returns the cgroup v2 path ("0::/path") of a
// /proc/<pid>/cgroup listing. A path outside the reader's cgroup namespace
// ("/../x") is refused.
func parseOwnCgroup2(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), 1<<20)
	for sc.Scan() {
		path, ok := strings.CutPrefix(sc.Text(), "0::")
		if !ok {
			continue
		}
		if !strings.HasPrefix(path, "/") {
			return "", fmt.Errorf("%w: %q is not absolute", errNoOwnCgroup2, path)
		}
		for _, e := range strings.Split(path, "/") {
			if e == ".." {
				return "", fmt.Errorf("%w: %q lies outside this cgroup namespace", errNoOwnCgroup2, path)
			}
		}
		return filepath.Clean(path), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading cgroup membership: %w", err)
	}
	return "", errNoOwnCgroup2
}

// systemProbe is the homeProbe of this process.
func systemProbe() homeProbe {
	return homeProbe{getenv: os.Getenv, ppid: os.Getppid(), marked: delegateMark, writable: cgroupWritable}
}

// delegateMark returns the name of systemd's delegation xattr set to 1 on
// dir, or "".
func delegateMark(dir string) string {
	buf := make([]byte, 8)
	for _, name := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, name, buf); err == nil && n > 0 && buf[0] == '1' {
			return name
		}
	}
	return ""
}

// cgroupWritable reports whether this process may create cgroups in dir,
// move processes into it and enable controllers for its children.
func cgroupWritable(dir string) bool {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		if unix.Access(p, unix.W_OK) != nil {
			return false
		}
	}
	return true
}

// ownHome is this process's cgroupHome, found on first use: once the
// endpoint moved itself into <unit>/endpoint, /proc/self/cgroup names the
// leaf, not the unit.
var ownHome = sync.OnceValues(func() (cgroupHome, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return cgroupHome{}, fmt.Errorf("finding cgroup2 mount: %w", err)
	}
	cgroups, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		cgroups = nil // no membership known: no delegation
	}
	h, err := findHome(bytes.NewReader(cgroups), bytes.NewReader(mountinfo), systemProbe())
	if err != nil {
		return cgroupHome{}, fmt.Errorf("finding cgroup2 mount: %w", err)
	}
	return h, nil
})

// resolveCgroupParent returns the parent directory for per-trace cgroups, or
// "" when cgroups are disabled ("-").
func resolveCgroupParent(parent string) (string, error) {
	h, err := ownHome()
	return resolveIn(h, err, parent)
}

// resolveIn is resolveCgroupParent for the home h (or herr, the reason
// there is none).
func resolveIn(h cgroupHome, herr error, parent string) (string, error) {
	switch {
	case parent == "-":
		return "", nil
	case filepath.IsAbs(parent):
		return filepath.Clean(parent), nil
	case parent == "":
		parent = DefaultCgroupDir
	case !filepath.IsLocal(parent):
		return "", fmt.Errorf("checking cgroup parent %q: a relative parent must stay below the cgroup2 mount", parent)
	}
	if herr != nil {
		return "", herr
	}
	// Relative: below the delegated unit's tracers or the cgroup2 mount,
	// e.g. "lambda-endpoint/<instance>".
	return filepath.Join(h.base(), parent), nil
}

// below reports whether dir is base or lies below it.
func below(base, dir string) bool {
	rel, err := filepath.Rel(base, dir)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// Delegation set-up, done once per process before the first tracer cgroup
// in the delegated unit is made (and retried after a failure).
var (
	delegateMu   sync.Mutex
	delegateDone bool
)

// prepareDelegated runs setupDelegated on unit once per process.
func prepareDelegated(unit string) error {
	delegateMu.Lock()
	defer delegateMu.Unlock()
	if delegateDone {
		return nil
	}
	if err := setupDelegated(unit); err != nil {
		return fmt.Errorf("preparing delegated cgroup %s: %w", unit, err)
	}
	delegateDone = true
	return nil
}

// setupDelegated makes the delegated layout in unit: the leaf
// unit/endpoint, into which it moves this process and every other process
// of unit, then unit/tracers, and enables the memory and pids controllers
// (those unit offers) in unit's and unit/tracers' cgroup.subtree_control.
// It may run again on a unit already laid out.
func setupDelegated(unit string) error {
	leaf := filepath.Join(unit, endpointLeaf)
	tracers := filepath.Join(unit, tracersDir)
	for _, dir := range []string{leaf, tracers} {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
	}
	if err := moveProcs(unit, leaf); err != nil {
		return err
	}
	have, err := readWords(filepath.Join(unit, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("reading controllers of %s: %w", unit, err)
	}
	var want []string
	for _, ctl := range []string{"memory", "pids"} {
		if have[ctl] {
			want = append(want, "+"+ctl)
		}
	}
	if len(want) == 0 {
		return nil // hybrid host: the limits live in cgroup v1
	}
	for _, dir := range []string{unit, tracers} {
		if err := writeCgroupFile(dir, "cgroup.subtree_control", strings.Join(want, " ")); err != nil {
			return err
		}
	}
	return nil
}

// moveProcs moves this process and then every process listed in
// from/cgroup.procs into to, until from is empty (a process forked during
// the move is listed on the next round). A process that exits meanwhile is
// skipped.
func moveProcs(from, to string) error {
	if err := writeCgroupFile(to, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	src := &cgroup{dir: from, fd: -1}
	for round := 0; ; round++ {
		pids, err := src.procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if round == 10 {
			return fmt.Errorf("moving processes from cgroup %s to %s: still %d left", from, to, len(pids))
		}
		for _, pid := range pids {
			err := writeCgroupFile(to, "cgroup.procs", strconv.Itoa(pid))
			if err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
	}
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
	mount, _, err := parseCgroup2MountRoot(r)
	return mount, err
}

// parseCgroup2MountRoot returns the mount point of the first cgroup2 file
// system in a /proc/<pid>/mountinfo listing and the path of the hierarchy
// mounted there ("/" unless a subtree is bind-mounted).
func parseCgroup2MountRoot(r io.Reader) (mount, root string, err error) {
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
		mount, root := unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3])
		if !filepath.IsAbs(mount) {
			continue
		}
		if !filepath.IsAbs(root) {
			root = "/"
		}
		return filepath.Clean(mount), filepath.Clean(root), nil
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("reading mountinfo: %w", err)
	}
	return "", "", errNoCgroup2
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
//
// A parent in the delegated unit (see cgroupHome) gets the unit laid out
// first: the endpoint moves into unit/endpoint.
func createCgroup(parent, name string) (*cgroup, error) {
	if h, err := ownHome(); err == nil && h.unit != "" && below(h.unit, parent) {
		if err := prepareDelegated(h.unit); err != nil {
			return nil, err
		}
	}
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
// In a delegated unit the empty directories between the parent and
// unit/tracers go as well (the unit is this endpoint's alone; systemd
// removes the rest when the unit stops).
func RemoveCgroupParent(parent string) error {
	dir, err := resolveCgroupParent(parent)
	if errors.Is(err, errNoCgroup2) || (err == nil && dir == "") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing cgroup parent: %w", err)
	}
	stop := filepath.Dir(dir)
	if h, err := ownHome(); err == nil && h.unit != "" && below(h.base(), dir) && dir != h.base() {
		stop = h.base()
	}
	if err := removeEmpty(dir, stop); err != nil {
		return fmt.Errorf("removing cgroup parent: %w", err)
	}
	if err := removeV1Parents(dir, stop); err != nil {
		return fmt.Errorf("removing cgroup parent: %w", err)
	}
	return nil
}

// removeEmpty removes dir and then its parents up to, not including, stop
// (an ancestor of dir), as long as they are empty cgroups.
func removeEmpty(dir, stop string) error {
	for d := dir; d != stop && below(stop, d); d = filepath.Dir(d) {
		err := syscall.Rmdir(d)
		switch {
		case err == nil, errors.Is(err, syscall.ENOENT):
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EBUSY):
			return nil
		default:
			return fmt.Errorf("removing cgroup parent %s: %w", d, err)
		}
	}
	return nil
}
