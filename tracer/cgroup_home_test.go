//go:build linux

package tracer

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The golden files testdata/cgroup/*.txt each describe one host: the
// /proc/self/cgroup and /proc/self/mountinfo contents, what the system
// probe answers, and, in the "want" section, where the tracers' cgroups
// go. Rewrite the want sections with
//
//	go test ./tracer -run TestCgroupHomeGolden -update
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func homeUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// homeCase is one parsed golden file.
type homeCase struct {
	comment  string
	sections map[string]string
	order    []string
}

// parseHomeCase reads "-- name --" sections, after a leading comment.
func parseHomeCase(t *testing.T, b []byte) homeCase {
	t.Helper()
	c := homeCase{sections: map[string]string{}}
	name := ""
	for _, line := range strings.SplitAfter(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") {
			name = strings.TrimSuffix(strings.TrimPrefix(trimmed, "-- "), " --")
			if _, dup := c.sections[name]; dup {
				t.Fatalf("section %q twice", name)
			}
			c.sections[name] = ""
			c.order = append(c.order, name)
			continue
		}
		if name == "" {
			c.comment += line
			continue
		}
		c.sections[name] += line
	}
	for _, need := range []string{"cgroup", "mountinfo", "probe"} {
		if _, ok := c.sections[need]; !ok {
			t.Fatalf("no %q section", need)
		}
	}
	return c
}

func (c homeCase) format() string {
	var b strings.Builder
	b.WriteString(c.comment)
	for _, name := range c.order {
		fmt.Fprintf(&b, "-- %s --\n%s", name, c.sections[name])
	}
	return b.String()
}

// fakeProbe builds a homeProbe from "env K=V", "ppid N", "writable DIR"
// and "mark DIR XATTR" lines.
func fakeProbe(t *testing.T, spec string) homeProbe {
	t.Helper()
	env := map[string]string{}
	writable := map[string]bool{}
	marks := map[string]string{}
	p := homeProbe{ppid: 4242}
	for _, line := range strings.Split(spec, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "env" && len(f) == 2:
			k, v, _ := strings.Cut(f[1], "=")
			env[k] = v
		case f[0] == "ppid" && len(f) == 2:
			if _, err := fmt.Sscan(f[1], &p.ppid); err != nil {
				t.Fatalf("probe line %q: %v", line, err)
			}
		case f[0] == "writable" && len(f) == 2:
			writable[f[1]] = true
		case f[0] == "mark" && len(f) == 3:
			marks[f[1]] = f[2]
		default:
			t.Fatalf("probe line %q: want env K=V, ppid N, writable DIR or mark DIR XATTR", line)
		}
	}
	p.getenv = func(k string) string { return env[k] }
	p.writable = func(dir string) bool { return writable[dir] }
	p.marked = func(dir string) string { return marks[dir] }
	return p
}

// homeParents are the cgroup parents every golden file resolves: the
// default (""), the relative one actors makes per data-dir, an absolute
// one, and "-".
var homeParents = []string{"", "lambda-endpoint/0123456789ab", "/sys/fs/cgroup/custom", "-"}

// describeHome is the "want" section for a case.
func describeHome(c homeCase, p homeProbe) string {
	var b strings.Builder
	cgroups, mountinfo := c.sections["cgroup"], c.sections["mountinfo"]
	h, herr := findHome(strings.NewReader(cgroups), strings.NewReader(mountinfo), p)
	if herr != nil {
		fmt.Fprintf(&b, "error: %v\n", herr)
	} else {
		fmt.Fprintf(&b, "mount: %s\n", h.mount)
		fmt.Fprintf(&b, "own: %s\n", orNone(h.own))
		fmt.Fprintf(&b, "delegated: %s\n", orNone(h.unit))
		fmt.Fprintf(&b, "why: %s\n", h.why)
		if h.unit != "" {
			fmt.Fprintf(&b, "endpoint leaf: %s\n", filepath.Join(h.unit, endpointLeaf))
		}
	}
	for _, parent := range homeParents {
		dir, err := resolveIn(h, herr, parent)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "parent %q: error: %v\n", parent, err)
		case dir == "":
			fmt.Fprintf(&b, "parent %q: disabled\n", parent)
		default:
			fmt.Fprintf(&b, "parent %q: %s\n", parent, dir)
		}
	}
	if herr != nil {
		return b.String()
	}
	dir, _ := resolveIn(h, nil, homeParents[1])
	for _, ctl := range []string{"memory", "pids"} {
		mount, root, err := parseV1Mount(strings.NewReader(mountinfo), ctl)
		if errors.Is(err, errNoV1Mount) {
			continue
		}
		path, err := parseV1Path(strings.NewReader(cgroups), ctl)
		if err != nil {
			fmt.Fprintf(&b, "v1 %s: error: %v\n", ctl, err)
			continue
		}
		own, err := v1DirOf(ctl, mount, root, path)
		if err != nil {
			fmt.Fprintf(&b, "v1 %s: error: %v\n", ctl, err)
			continue
		}
		fmt.Fprintf(&b, "v1 %s limits of %q: %s\n", ctl, homeParents[1], filepath.Join(own, v1Name(h, path, dir)))
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TestCgroupHomeGolden checks, host by host, whether the endpoint counts
// its own cgroup as delegated and where each kind of cgroup parent then
// puts the tracers' cgroups (and their v1 limit cgroups on hybrid hosts).
func TestCgroupHomeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "cgroup", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d golden files in testdata/cgroup", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c := parseHomeCase(t, b)
			got := describeHome(c, fakeProbe(t, c.sections["probe"]))
			if homeUpdating() {
				if _, ok := c.sections["want"]; !ok {
					c.order = append(c.order, "want")
				}
				c.sections["want"] = got
				if err := os.WriteFile(file, []byte(c.format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := c.sections["want"]; got != want {
				t.Errorf("%s: got\n%s\nwant\n%s", file, got, want)
			}
		})
	}
}

func TestParseOwnCgroup2(t *testing.T) {
	tests := []struct {
		name, cgroup, want string
		err                bool
	}{
		{"unified", "0::/system.slice/x.service\n", "/system.slice/x.service", false},
		{"hybrid", "4:memory:/a\n1:name=systemd:/b\n0::/c\n", "/c", false},
		{"root", "0::/\n", "/", false},
		{"trailing slash", "0::/a/b/\n", "/a/b", false},
		{"v1 only", "4:memory:/a\n1:name=systemd:/b\n", "", true},
		{"outside namespace", "0::/../x\n", "", true},
		{"relative", "0::x\n", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOwnCgroup2(strings.NewReader(tt.cgroup))
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.err)
			}
			if err != nil && !errors.Is(err, errNoOwnCgroup2) {
				t.Errorf("error %v does not wrap errNoOwnCgroup2", err)
			}
		})
	}
}

// TestRemoveEmpty removes empty directories up to, not including, the
// stop directory, and stops at the first one that is not empty.
func TestRemoveEmpty(t *testing.T) {
	base := t.TempDir()
	deep := filepath.Join(base, "tracers", "lambda-endpoint", "0123")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	busy := filepath.Join(base, "tracers", "other")
	if err := os.Mkdir(busy, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeEmpty(deep, filepath.Join(base, "tracers")); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{
		deep: false, filepath.Dir(deep): false, filepath.Join(base, "tracers"): true, busy: true,
	} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, want)
		}
	}
	// Stops at a directory that is not empty, and a missing one is no error.
	if err := os.Mkdir(filepath.Join(base, "tracers", "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeEmpty(filepath.Join(busy, "gone"), base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(busy); err == nil {
		t.Errorf("empty %s left", busy)
	}
	if _, err := os.Stat(filepath.Join(base, "tracers")); err != nil {
		t.Errorf("tracers removed while it held keep: %v", err)
	}
	// A stop that is no ancestor removes nothing.
	if err := removeEmpty(filepath.Join(base, "tracers"), "/elsewhere"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "tracers")); err != nil {
		t.Errorf("removed outside stop: %v", err)
	}
}

func FuzzParseOwnCgroup2(f *testing.F) {
	f.Add("0::/system.slice/lambda-endpoint.service\n")
	f.Add("4:memory:/a\n0::/../b\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseOwnCgroup2(strings.NewReader(s))
		if err != nil {
			return
		}
		if !filepath.IsAbs(got) || filepath.Clean(got) != got || slices.Contains(strings.Split(got, "/"), "..") {
			t.Fatalf("own cgroup %q is not a clean absolute path inside the namespace", got)
		}
	})
}
