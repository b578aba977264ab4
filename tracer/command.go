package tracer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrTracerNotFound is wrapped by Start when Command.Path does not exist or
// is not an executable file. Callers answer it as a configuration error
// naming the bpf-path or stap-path key.
var ErrTracerNotFound = errors.New("tracer executable not found or not executable")

// ErrLimitsUnavailable is wrapped by Start when Command.LimitsRequired is
// set and the tracer cannot get its memory or pids limit: the controller is
// in neither cgroup v2 nor a mounted, writable cgroup v1 hierarchy.
var ErrLimitsUnavailable = errors.New("tracer resource limits unavailable")

// Command describes how to run one tracer. Its fields are taken as they are:
// the caller validates the script, options and environment beforehand.
type Command struct {
	// Path is the tracer executable (the bpf-path or stap-path setting).
	Path string
	// Script is the script file, passed as the first argument.
	Script string
	// Options are extra arguments after the script.
	Options []string
	// Env holds the template's environment as "NAME=value" entries. The
	// tracer gets BaseEnv plus these (a later entry for a name replaces an
	// earlier one) and nothing from the endpoint's own environment.
	Env []string
	// RootPassword, when set and the endpoint does not run as root, makes
	// the tracer run through "sudo -S" with the password on its stdin.
	RootPassword string
	// SudoPath is the sudo executable; "" means DefaultSudoPath.
	SudoPath string
	// StderrLimit is how many bytes of the tracer's stderr are kept (the
	// tail); zero or negative means DefaultStderrLimit.
	StderrLimit int
	// CgroupParent is the cgroup v2 directory under which the tracer gets a
	// cgroup of its own: an absolute path; a relative one (e.g.
	// "lambda-endpoint/a1b2", created as needed) or "" (same as
	// "lambda-endpoint"), taken below <unit>/tracers when the endpoint's own
	// cgroup is a delegated systemd unit (Delegate=yes; the endpoint then
	// moves itself into <unit>/endpoint), else below the cgroup2 mount; or
	// "-" to disable cgroups (process group only).
	CgroupParent string
	// MemoryMax is the tracer's memory limit in bytes: cgroup v2
	// memory.max (and memory.swap.max 0), or on a hybrid host v1
	// memory.limit_in_bytes (and memory.memsw.limit_in_bytes); zero or
	// negative means no limit.
	MemoryMax int64
	// PidsMax is the tracer cgroup's pids.max; zero or negative means no
	// limit.
	PidsMax int64
	// LimitsRequired makes Start fail (wrapping ErrLimitsUnavailable) when
	// MemoryMax or PidsMax cannot be applied; otherwise the tracer runs
	// without them and Process.LimitsErr says why.
	LimitsRequired bool
	// Name names the tracer's cgroup directory (the trace's uuid, say). It
	// must be a single path element; "" picks a random name.
	Name string
}

// DefaultSudoPath is used when Command.SudoPath is empty.
const DefaultSudoPath = "/usr/bin/sudo"

// DefaultCgroupDir is the directory created under the cgroup2 mount when
// Command.CgroupParent is empty.
const DefaultCgroupDir = "lambda-endpoint"

// The entries of BaseEnv.
const (
	basePath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	baseLang = "LANG=C"
)

// BaseEnv returns the environment every tracer starts from: a fixed PATH and
// LANG=C. Command.Env is added to it.
func BaseEnv() []string { return []string{basePath, baseLang} }

// envPath runs the tracer under sudo with exactly the environment we choose.
const envPath = "/usr/bin/env"

// launchSpec is what actually gets executed for a Command.
type launchSpec struct {
	path  string   // executable
	args  []string // argv, argv[0] included
	env   []string // environment of the executable
	stdin string   // written to its stdin; "" means /dev/null
	sudo  bool     // path is sudo, the tracer is its child
}

// buildLaunch turns c into the program to execute for an endpoint running
// with effective uid euid.
func buildLaunch(c Command, euid int) (launchSpec, error) {
	env, err := tracerEnv(c.Env)
	if err != nil {
		return launchSpec{}, err
	}
	tracerArgs := append([]string{c.Path, c.Script}, c.Options...)
	if euid == 0 || c.RootPassword == "" {
		return launchSpec{path: c.Path, args: tracerArgs, env: env}, nil
	}
	if strings.ContainsAny(c.RootPassword, "\n\x00") {
		return launchSpec{}, errors.New("checking root password: contains a newline or NUL")
	}
	if len(c.RootPassword) > 1024 {
		return launchSpec{}, errors.New("checking root password: longer than 1024 bytes")
	}
	path, err := filepath.Abs(c.Path)
	if err != nil {
		return launchSpec{}, fmt.Errorf("resolving tracer path %s: %w", c.Path, err)
	}
	if strings.Contains(path, "=") {
		// env(1) would take it for a variable assignment.
		return launchSpec{}, fmt.Errorf("checking tracer path %s: contains '=', cannot run through sudo", path)
	}
	tracerArgs[0] = path
	sudo := c.SudoPath
	if sudo == "" {
		sudo = DefaultSudoPath
	}
	args := []string{sudo, "-S", "-p", "", "--", envPath, "-i"}
	args = append(args, env...)
	args = append(args, tracerArgs...)
	return launchSpec{
		path:  sudo,
		args:  args,
		env:   BaseEnv(),
		stdin: c.RootPassword + "\n",
		sudo:  true,
	}, nil
}

// tracerEnv returns BaseEnv followed by extra; a later entry for a name
// replaces an earlier one.
func tracerEnv(extra []string) ([]string, error) {
	all := append(BaseEnv(), extra...)
	for _, kv := range extra {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" || strings.HasPrefix(name, "-") || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("checking tracer environment: invalid entry %q", kv)
		}
	}
	seen := make(map[string]bool, len(all))
	out := make([]string, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		name, _, _ := strings.Cut(all[i], "=")
		if !seen[name] {
			seen[name] = true
			out = append(out, all[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// checkExecutable wraps ErrTracerNotFound unless path is an executable
// regular file (after following symlinks).
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("checking tracer %q: %w: %w", path, ErrTracerNotFound, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("checking tracer %q: %w: mode %s", path, ErrTracerNotFound, fi.Mode())
	}
	return nil
}

// checkName accepts "" and single path elements usable as a directory name.
func checkName(name string) error {
	if name == "" {
		return nil
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return fmt.Errorf("checking tracer name %q: not a plain directory name", name)
	}
	return nil
}
