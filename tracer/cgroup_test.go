//go:build linux

package tracer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCgroup2Mount(t *testing.T) {
	tests := []struct {
		name, mountinfo, want string
		err                   error
	}{
		{"hybrid", `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`, "/sys/fs/cgroup/unified", nil},
		{"unified with optional fields", `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`, "/sys/fs/cgroup", nil},
		{"escaped space", `50 23 0:40 / /mnt/my\040cgroups rw - cgroup2 none rw
`, "/mnt/my cgroups", nil},
		{"first of two", `50 23 0:40 / /a rw - cgroup2 none rw
51 23 0:40 / /b rw - cgroup2 none rw
`, "/a", nil},
		{"v1 only", `32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
`, "", errNoCgroup2},
		{"garbage", "cgroup2 cgroup2\n - \n\n", "", errNoCgroup2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCgroup2Mount(strings.NewReader(tt.mountinfo))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestResolveCgroupParent(t *testing.T) {
	if got, err := resolveCgroupParent("-"); got != "" || err != nil {
		t.Errorf(`"-" gives %q, %v; want disabled`, got, err)
	}
	if got, err := resolveCgroupParent("/x/../y/"); got != "/y" || err != nil {
		t.Errorf(`"/x/../y/" gives %q, %v`, got, err)
	}
	for _, bad := range []string{"../escape", "a/../../b"} {
		if got, err := resolveCgroupParent(bad); err == nil {
			t.Errorf("relative parent %q escaping the mount is accepted as %q", bad, got)
		}
	}
	def, err := resolveCgroupParent("")
	if err == nil && filepath.Base(def) != DefaultCgroupDir {
		t.Errorf(`"" gives %q`, def)
	}
	if err == nil {
		// A relative parent lives below the same mount.
		got, err := resolveCgroupParent("lambda-endpoint/instance-1")
		if want := filepath.Join(filepath.Dir(def), "lambda-endpoint", "instance-1"); err != nil || got != want {
			t.Errorf("relative parent gives %q, %v; want %q", got, err, want)
		}
	}
}

func FuzzParseCgroup2Mount(f *testing.F) {
	f.Add("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
	f.Add(`50 23 0:40 / /mnt/my\040cg\1 rw - cgroup2 none rw`)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseCgroup2Mount(strings.NewReader(s))
		if err == nil && (!filepath.IsAbs(got) || filepath.Clean(got) != got) {
			t.Fatalf("mount %q is not a clean absolute path", got)
		}
	})
}

// TestRemoveCgroupParent removes an empty parent after its tracer is gone
// and leaves one that still holds a cgroup.
func TestRemoveCgroupParent(t *testing.T) {
	parent := testCgroupParent(t)
	requireCgroup(t, parent)
	sub := filepath.Join(parent, "instance")
	p := startFake(t, "exit 0", func(c *Command) { c.CgroupParent = sub })
	if !p.Contained() {
		t.Fatalf("tracer not contained: %v", p.ContainErr())
	}
	busy := filepath.Join(parent, "busy")
	if err := os.Mkdir(busy, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(busy, "trace"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if err := RemoveCgroupParent(sub); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sub); !os.IsNotExist(err) {
		t.Errorf("parent %s still there after its tracer exited: %v", sub, err)
	}
	if err := RemoveCgroupParent(busy); err != nil {
		t.Fatalf("a parent with a cgroup below: %v", err)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("a parent with a cgroup below was removed: %v", err)
	}
	os.Remove(filepath.Join(busy, "trace"))
	os.Remove(busy)
	if err := RemoveCgroupParent("-"); err != nil {
		t.Errorf(`RemoveCgroupParent("-") = %v`, err)
	}
}
