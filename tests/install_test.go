package tests

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/lambda-endpoint/lambda-endpoint/config"
)

const (
	installConf    = "etc/lambda-endpoint/lambda.toml"
	installUnit    = "etc/systemd/system/lambda-endpoint.service"
	installExample = "../config/lambda.example.toml"
	stateDir       = "/var/lib/lambda-endpoint"
)

// install runs `make install DESTDIR=root PREFIX=prefix` in the
// repository ("" keeps the default PREFIX) and returns its output. Without
// make (outside CI) it runs scripts/install directly on the test binary.
func install(t *testing.T, root, prefix string) string {
	t.Helper()
	args := []string{"DESTDIR=" + root}
	if prefix != "" {
		args = append(args, "PREFIX="+prefix)
	}
	var cmd *exec.Cmd
	if _, err := exec.LookPath("make"); err == nil {
		cmd = exec.Command("make", append([]string{"-C", "..", "--no-print-directory", "install"}, args...)...)
	} else {
		if inCI() {
			t.Fatal("make is not installed: CI must provide it")
		}
		if buildErr != nil {
			t.Fatal(buildErr)
		}
		t.Logf("make is not installed: running scripts/install directly (%v)", err)
		cmd = exec.Command("../scripts/install")
		cmd.Env = append(os.Environ(), append(args, "BIN="+endpointBin)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// installedConfig is what the test reads back from an installed lambda.toml.
type installedConfig struct {
	Database struct {
		URL string `toml:"url"`
	} `toml:"database"`
	Lambda struct {
		EndpointUUID string `toml:"endpoint-uuid"`
		Secret       string `toml:"secret"`
		PlatformURL  string `toml:"platform-url"`
		DataDir      string `toml:"data-dir"`
		CgroupParent string `toml:"cgroup-parent"`
	} `toml:"lambda"`
}

func readInstalledConfig(t *testing.T, path string) installedConfig {
	t.Helper()
	var c installedConfig
	if _, err := toml.DecodeFile(path, &c); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return c
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := st.Mode(); got.Perm() != want.Perm() || got.Type() != want.Type() {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

var (
	secretHex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	uuidV4    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// TestInstall installs twice into staging roots (the default PREFIX and
// another) and checks the files, their modes, the generated configuration
// (valid once platform-url is set, a fresh uuid and secret per install),
// that a second install keeps an existing configuration, and that the
// installed unit passes systemd-analyze verify as installed.
func TestInstall(t *testing.T) {
	example := readInstalledConfig(t, installExample)
	a, b := t.TempDir(), t.TempDir()
	outA := install(t, a, "")
	install(t, b, "/opt/lambda-endpoint")
	if !strings.Contains(outA, "created /") {
		t.Errorf("first install does not say it created the config:\n%s", outA)
	}

	for _, tc := range []struct{ root, prefix string }{{a, "/usr/local"}, {b, "/opt/lambda-endpoint"}} {
		bin := filepath.Join(tc.root, tc.prefix, "bin", "lambda-endpoint")
		checkMode(t, bin, 0o755)
		checkMode(t, filepath.Join(tc.root, installUnit), 0o644)
		checkMode(t, filepath.Join(tc.root, filepath.Dir(installConf)), fs.ModeDir|0o700)
		conf := filepath.Join(tc.root, installConf)
		checkMode(t, conf, 0o600)
		if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
			t.Errorf("%s version: %v\n%s", bin, err, out)
		}

		unit, err := os.ReadFile(filepath.Join(tc.root, installUnit))
		if err != nil {
			t.Fatal(err)
		}
		want := "\nExecStart=" + tc.prefix + "/bin/lambda-endpoint serve --config /" + installConf + "\n"
		if !strings.Contains(string(unit), want) {
			t.Errorf("%s: no line %q", installUnit, strings.TrimSpace(want))
		}
		if strings.Contains(string(unit), tc.root) {
			t.Errorf("%s names the staging root %s", installUnit, tc.root)
		}

		c := readInstalledConfig(t, conf)
		if !secretHex.MatchString(c.Lambda.Secret) || c.Lambda.Secret == example.Lambda.Secret {
			t.Errorf("%s: secret %q is not a fresh 256-bit hex secret", conf, c.Lambda.Secret)
		}
		if !uuidV4.MatchString(c.Lambda.EndpointUUID) || c.Lambda.EndpointUUID == example.Lambda.EndpointUUID {
			t.Errorf("%s: endpoint-uuid %q is not a fresh v4 UUID", conf, c.Lambda.EndpointUUID)
		}
		if c.Lambda.PlatformURL != "" {
			t.Errorf("%s: platform-url %q, want the empty placeholder the operator must set", conf, c.Lambda.PlatformURL)
		}
		if c.Lambda.DataDir != stateDir || c.Database.URL != "sqlite://"+stateDir+"/lambda-endpoint.db" {
			t.Errorf("%s: data-dir %q, database url %q; want both in %s", conf, c.Lambda.DataDir, c.Database.URL, stateDir)
		}
		if c.Lambda.CgroupParent != "" {
			t.Errorf("%s: cgroup-parent %q, want the default (the unit's delegated subtree)", conf, c.Lambda.CgroupParent)
		}

		// The endpoint's own validation: refused until platform-url is
		// set, valid (mode, keys, values) once it is.
		env := map[string]string{}
		getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if _, err := config.Load(conf, getenv); err == nil || !strings.Contains(err.Error(), "platform-url") {
			t.Errorf("%s loads without platform-url: %v", conf, err)
		}
		env["LAMBDA_PLATFORM_URL"] = "https://platform.example.com"
		if _, err := config.Load(conf, getenv); err != nil {
			t.Errorf("%s with platform-url set: %v", conf, err)
		}
		verifyInstalledUnit(t, tc.root)
	}
	ca, cb := readInstalledConfig(t, filepath.Join(a, installConf)), readInstalledConfig(t, filepath.Join(b, installConf))
	if ca.Lambda.Secret == cb.Lambda.Secret || ca.Lambda.EndpointUUID == cb.Lambda.EndpointUUID {
		t.Errorf("two installs share secret or uuid: %+v, %+v", ca.Lambda, cb.Lambda)
	}

	// Again into a: the config the operator edited stays as it is; binary
	// and unit are replaced.
	conf := filepath.Join(a, installConf)
	edited, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edited = bytes.Replace(edited, []byte(`platform-url = ""`), []byte(`platform-url = "https://platform.example.com"`), 1)
	if err := os.WriteFile(conf, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(a, "usr/local/bin/lambda-endpoint")
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	out := install(t, a, "")
	if got, err := os.ReadFile(conf); err != nil || !bytes.Equal(got, edited) {
		t.Errorf("a second install changed %s (%v):\n%s", conf, err, got)
	}
	if !strings.Contains(out, "not overwritten") {
		t.Errorf("a second install does not say it kept the config:\n%s", out)
	}
	checkMode(t, conf, 0o600)
	checkMode(t, bin, 0o755)
}

// verifyInstalledUnit runs systemd-analyze verify on the unit installed in
// root, with root as the file system root (so ExecStart's binary is the
// installed one), after copying the host's system units there (the unit's
// default dependencies name sysinit.target and the like). Any diagnostic
// fails. It also checks that verify does look inside root: without the
// binary it must complain. Without systemd-analyze, fails in CI.
func verifyInstalledUnit(t *testing.T, root string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if inCI() {
			t.Fatal("systemd-analyze is not installed: CI must provide it (apt-get install systemd)")
		}
		t.Logf("NOT VERIFIED: systemd-analyze is not installed (%v)", err)
		return
	}
	copied := 0
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		dst := filepath.Join(root, dir)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if _, err := os.Stat(dst); err == nil {
			continue // /lib -> usr/lib, or copied before
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v\n%s", dir, err, out)
		}
		copied++
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system/sysinit.target")); err != nil && copied == 0 {
		t.Fatalf("no system units to verify against: %v", err)
	}
	verify := func() (string, error) {
		out, err := exec.Command(sa, "verify", "--root="+root, "/"+installUnit).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := verify(); err != nil || out != "" {
		t.Errorf("systemd-analyze verify --root=%s /%s: %v\n%s", root, installUnit, err, out)
	}

	unit, err := os.ReadFile(filepath.Join(root, installUnit))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(unit)
	if m == nil {
		t.Fatalf("no ExecStart in %s", installUnit)
	}
	bin := filepath.Join(root, string(m[1]))
	moved := bin + ".away"
	if err := os.Rename(bin, moved); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(moved, bin)
	if out, err := verify(); err == nil && !strings.Contains(out, string(m[1])) {
		t.Errorf("systemd-analyze verify --root=%s passes without %s: it did not check the installed binary\n%s", root, m[1], out)
	}
}
