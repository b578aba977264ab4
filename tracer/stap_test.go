package tracer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// scriptRequireStap returns the stap path, or skips the test (fails it when
// CI=true) when SystemTap is missing.
func scriptRequireStap(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("stap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but SystemTap is not installed: %v", err)
		}
		t.Skipf("SKIPPING the stap checks: SystemTap is not installed: %v", err)
	}
	return bin
}

// scriptStapKernelDir builds the smallest kernel build tree stap accepts
// for passes 1 to 3 (the real one, /lib/modules/$(uname -r)/build, is
// usually absent): the kernel's .config (from /proc/config.gz, else
// /boot/config-<release>, else the few options process probes need),
// include/config/kernel.release, an empty Makefile and Module.symvers, and
// System.map copied from /proc/kallsyms (stap looks up
// arch_uretprobe_hijack_return_addr there before it allows .return probes).
func scriptStapKernelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatalf("reading the kernel release: %v", err)
	}
	config := scriptKernelConfig(t, strings.TrimSpace(string(release)))
	symbols := scriptKernelSymbols(t)
	files := map[string][]byte{
		".config":                       config,
		"include/config/kernel.release": release,
		"Makefile":                      nil,
		"Module.symvers":                nil,
		"System.map":                    symbols,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// scriptKernelConfig returns the running kernel's configuration, or a
// minimal one with process probes enabled.
func scriptKernelConfig(t *testing.T, release string) []byte {
	t.Helper()
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("reading /proc/config.gz: %v", err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("reading /proc/config.gz: %v", err)
		}
		return data
	}
	if data, err := os.ReadFile("/boot/config-" + release); err == nil {
		return data
	}
	t.Logf("no kernel config found: using a minimal one")
	return []byte("CONFIG_TRACEPOINTS=y\nCONFIG_UPROBES=y\nCONFIG_ARCH_SUPPORTS_UPROBES=y\n")
}

// scriptKernelSymbols returns /proc/kallsyms without module symbols, in
// System.map format.
func scriptKernelSymbols(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Logf("no /proc/kallsyms (%v): pass 2 will refuse return probes", err)
		return nil
	}
	defer f.Close()
	var b bytes.Buffer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "[") {
			b.WriteString(sc.Text())
			b.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /proc/kallsyms: %v", err)
	}
	return b.Bytes()
}

// scriptRunStap runs stap -p<pass> on file and returns its combined output
// and error.
func scriptRunStap(t *testing.T, stap, kdir, file string, pass int) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stap, "-p"+string(rune('0'+pass)), "-r", kdir, file)
	cmd.Env = append(os.Environ(), "SYSTEMTAP_DIR="+t.TempDir())
	return cmd.CombinedOutput()
}

// TestScriptSTAPParses has SystemTap parse every golden STAP script (pass
// 1), and elaborate and translate to C those whose binary exists here
// (passes 2 and 3: probe points resolved against the binary, tapset
// functions, @defined($return), variable and array types checked). Pass 4
// would compile a kernel module and needs kernel headers.
func TestScriptSTAPParses(t *testing.T) {
	stap := scriptRequireStap(t)
	kdir := scriptStapKernelDir(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.stp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden STAP scripts in testdata (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if out, err := scriptRunStap(t, stap, kdir, file, 1); err != nil {
				t.Fatalf("stap -p1 %s: %v\n%s", file, err, out)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(`process("/bin/bash")`)) {
				return // the binary exists only in the spec
			}
			if _, err := os.Stat("/bin/bash"); err != nil {
				t.Skipf("SKIPPING passes 2 and 3: /bin/bash is missing")
			}
			if out, err := scriptRunStap(t, stap, kdir, file, 3); err != nil {
				t.Fatalf("stap -p3 %s: %v\n%s", file, err, scriptTail(out, 4000))
			}
		})
	}
}

// TestScriptSTAPCheckCanFail shows that the stap checks above can fail: a
// script with a probe point bash lacks passes 1 and fails 2, and a broken
// script fails 1.
func TestScriptSTAPCheckCanFail(t *testing.T) {
	stap := scriptRequireStap(t)
	kdir := scriptStapKernelDir(t)
	script, err := Script(ScriptSpec{Type: messages.STAP, Process: "/bin/bash",
		Functions: []string{"no_such_function_here"}, Lasting: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.stp")
	broken := filepath.Join(dir, "broken.stp")
	if err := os.WriteFile(missing, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, bytes.Replace(script, []byte("}\n"), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := scriptRunStap(t, stap, kdir, missing, 1); err != nil {
		t.Fatalf("stap -p1 refused a well-formed script: %v\n%s", err, out)
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		if out, err := scriptRunStap(t, stap, kdir, missing, 2); err == nil {
			t.Errorf("stap -p2 accepted a function bash lacks:\n%s", out)
		}
	}
	if out, err := scriptRunStap(t, stap, kdir, broken, 1); err == nil {
		t.Errorf("stap -p1 accepted a script without a closing brace:\n%s", out)
	}
}
