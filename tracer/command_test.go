package tracer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestBuildLaunch(t *testing.T) {
	base := Command{
		Path:    "/usr/bin/bpftrace",
		Script:  "/tmp/x.trace",
		Options: []string{"-B", "line"},
		Env:     []string{"BPFTRACE_STRLEN=200"},
	}
	withPassword := base
	withPassword.RootPassword = "s3cret pw"
	otherSudo := withPassword
	otherSudo.SudoPath = "/opt/bin/sudo"
	env := []string{basePath, baseLang, "BPFTRACE_STRLEN=200"}
	direct := launchSpec{
		path: "/usr/bin/bpftrace",
		args: []string{"/usr/bin/bpftrace", "/tmp/x.trace", "-B", "line"},
		env:  env,
	}
	sudoArgs := func(sudo string) []string {
		return []string{sudo, "-S", "-p", "", "--", "/usr/bin/env", "-i",
			basePath, baseLang, "BPFTRACE_STRLEN=200",
			"/usr/bin/bpftrace", "/tmp/x.trace", "-B", "line"}
	}
	tests := []struct {
		name string
		c    Command
		euid int
		want launchSpec
	}{
		{"root", base, 0, direct},
		{"root ignores the password", withPassword, 0, direct},
		{"not root without password", base, 1000, direct},
		{"not root with password", withPassword, 1000, launchSpec{
			path: DefaultSudoPath, args: sudoArgs(DefaultSudoPath),
			env: []string{basePath, baseLang}, stdin: "s3cret pw\n", sudo: true,
		}},
		{"other sudo", otherSudo, 1000, launchSpec{
			path: "/opt/bin/sudo", args: sudoArgs("/opt/bin/sudo"),
			env: []string{basePath, baseLang}, stdin: "s3cret pw\n", sudo: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildLaunch(tt.c, tt.euid)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("buildLaunch =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestBuildLaunchRefuses(t *testing.T) {
	tests := map[string]Command{
		"password with newline": {Path: "/usr/bin/bpftrace", RootPassword: "a\nb"},
		"path with '='":         {Path: "/opt/a=b/bpftrace", RootPassword: "pw"},
		"env without '='":       {Path: "/usr/bin/bpftrace", Env: []string{"BPFTRACE_X"}},
		"env with empty name":   {Path: "/usr/bin/bpftrace", Env: []string{"=x"}},
		"env like an option":    {Path: "/usr/bin/bpftrace", Env: []string{"-u=root"}},
		"env with NUL":          {Path: "/usr/bin/bpftrace", Env: []string{"A=b\x00c"}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := buildLaunch(c, 1000); err == nil {
				t.Errorf("buildLaunch = %#v, want an error", got)
			}
		})
	}
}

func TestTracerEnvLaterWins(t *testing.T) {
	got, err := tracerEnv([]string{"A=1", "PATH=/opt", "A=2"})
	want := []string{baseLang, "PATH=/opt", "A=2"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("tracerEnv = %q, %v; want %q", got, err, want)
	}
}

func TestCheckExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	for path, mode := range map[string]os.FileMode{exe: 0o755, plain: 0o644} {
		if err := os.WriteFile(path, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{exe: true, link: true, plain: false, dir: false, filepath.Join(dir, "nope"): false, "": false}
	for path, ok := range tests {
		err := checkExecutable(path)
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrTracerNotFound)) {
			t.Errorf("checkExecutable(%q) = %v, want ok %v", path, err, ok)
		}
	}
}
