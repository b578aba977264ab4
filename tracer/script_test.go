package tracer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// The golden scripts are rewritten with "go test ./tracer -run
// TestScriptGolden -update". The flag is defined here unless another test
// file of the package already did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

// scriptUpdating reports whether -update was given.
func scriptUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// scriptGoldenCases are the specs whose scripts are kept in
// testdata/<name>.bt or .stp.
var scriptGoldenCases = []struct {
	name string
	spec ScriptSpec
}{
	{"bpf_single", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour}},
	{"bpf_several", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc"},
		Lasting: time.Minute, Mode: messages.ModeEvents}},
	{"bpf_duplicates", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xmalloc", "xfree"},
		Lasting: 10 * time.Second}},
	{"bpf_wildcard", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmall*", "*_alloc"}, Lasting: 10 * time.Second}},
	{"bpf_symbols", ScriptSpec{Type: messages.BPF, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "memcpy@GLIBC_2.2.5", "_ZN3fooC2Ev"}, Lasting: 5 * time.Second}},
	{"bpf_lasting1", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xfree"}, Lasting: time.Second}},
	{"bpf_lasting86400", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xfree"}, Lasting: 24 * time.Hour}},
	{"stap_single", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour}},
	{"stap_several", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc"},
		Lasting: time.Minute, Mode: messages.ModeEvents}},
	{"stap_wildcard", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmall*", "*_alloc", "x?ree"},
		Lasting: 10 * time.Second}},
	{"stap_symbols", ScriptSpec{Type: messages.STAP, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "main@shell.c"}, Lasting: 5 * time.Second}},
	{"stap_lasting1", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xfree"}, Lasting: time.Second}},
	{"stap_lasting86400", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xfree"}, Lasting: 24 * time.Hour}},
	{"stap_lasting172800", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xfree"}, Lasting: 48 * time.Hour}},
}

// scriptGoldenPath returns the golden file of a case.
func scriptGoldenPath(name string, t messages.TraceType) string {
	if t == messages.BPF {
		return filepath.Join("testdata", name+".bt")
	}
	return filepath.Join("testdata", name+".stp")
}

func TestScriptGolden(t *testing.T) {
	for _, tc := range scriptGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.spec)
			if err != nil {
				t.Fatalf("Script() = %v", err)
			}
			file := scriptGoldenPath(tc.name, tc.spec.Type)
			if scriptUpdating() {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Script() differs from %s (run with -update after checking the change):\n--- got\n%s\n--- want\n%s", file, got, want)
			}
		})
	}
}

func TestScriptShape(t *testing.T) {
	for _, tc := range scriptGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.spec)
			if err != nil {
				t.Fatalf("Script() = %v", err)
			}
			s := string(got)
			var unique []string
			for _, f := range tc.spec.Functions {
				if !slices.Contains(unique, f) {
					unique = append(unique, f)
				}
			}
			printfs := strings.Count(s, "printf(")
			if printfs != 2*len(unique) {
				t.Errorf("%d printf calls, want one per event: %d", printfs, 2*len(unique))
			}
			for _, f := range unique {
				var entry, ret string
				if tc.spec.Type == messages.BPF {
					entry = fmt.Sprintf("uprobe:%q:%q {\n", tc.spec.Process, f)
					ret = fmt.Sprintf("uretprobe:%q:%q {\n", tc.spec.Process, f)
				} else {
					entry = fmt.Sprintf("probe process(%q).function(%q).call {\n", tc.spec.Process, f)
					ret = fmt.Sprintf("probe process(%q).function(%q).return {\n", tc.spec.Process, f)
				}
				if n := strings.Count(s, entry); n != 1 {
					t.Errorf("entry probe %q appears %d times, want 1", entry, n)
				}
				if n := strings.Count(s, ret); n != 1 {
					t.Errorf("return probe %q appears %d times, want 1", ret, n)
				}
			}
			secs := int64(tc.spec.Lasting / time.Second)
			var timer string
			switch {
			case tc.spec.Type == messages.BPF:
				timer = fmt.Sprintf("\ninterval:s:%d { exit(); }\n", secs)
			case secs <= 86400:
				timer = fmt.Sprintf("\nprobe timer.s(%d) { exit() }\n", secs)
			default:
				timer = fmt.Sprintf("lambda_deadline = gettimeofday_s() + %d }\n", secs)
			}
			if !strings.Contains(s, timer) {
				t.Errorf("script lacks %q", timer)
			}
		})
	}
}

func TestScriptModeAndDuplicates(t *testing.T) {
	for _, typ := range []messages.TraceType{messages.BPF, messages.STAP} {
		base := ScriptSpec{Type: typ, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"}, Lasting: 5 * time.Second}
		want, err := Script(base)
		if err != nil {
			t.Fatal(err)
		}
		events := base
		events.Mode = messages.ModeEvents
		dups := base
		dups.Functions = []string{"xmalloc", "xmalloc", "xfree", "xmalloc", "xfree"}
		for name, spec := range map[string]ScriptSpec{"events mode": events, "duplicates": dups} {
			got, err := Script(spec)
			if err != nil {
				t.Fatalf("%s %s: %v", typ, name, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s: script differs from the plain one:\n%s", typ, name, got)
			}
		}
	}
}

func TestScriptRefuses(t *testing.T) {
	good := ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Minute}
	tests := []struct {
		name      string
		change    func(*ScriptSpec)
		wantField string
	}{
		{"no type", func(s *ScriptSpec) { s.Type = "" }, "traceType"},
		{"lower-case type", func(s *ScriptSpec) { s.Type = "bpf" }, "traceType"},
		{"unknown type", func(s *ScriptSpec) { s.Type = "DTRACE" }, "traceType"},
		{"unknown mode", func(s *ScriptSpec) { s.Mode = "counts" }, "mode"},
		{"zero lasting", func(s *ScriptSpec) { s.Lasting = 0 }, "lasting"},
		{"negative lasting", func(s *ScriptSpec) { s.Lasting = -time.Second }, "lasting"},
		{"sub-second lasting", func(s *ScriptSpec) { s.Lasting = 500 * time.Millisecond }, "lasting"},
		{"fractional lasting", func(s *ScriptSpec) { s.Lasting = 1500 * time.Millisecond }, "lasting"},
		{"huge lasting", func(s *ScriptSpec) { s.Lasting = (maxScriptLasting + 1) * time.Second }, "lasting"},
		{"empty process", func(s *ScriptSpec) { s.Process = "" }, "process"},
		{"relative process", func(s *ScriptSpec) { s.Process = "bash" }, "process"},
		{"traversal", func(s *ScriptSpec) { s.Process = "/bin/../bin/bash" }, "process"},
		{"quote in process", func(s *ScriptSpec) { s.Process = `/bin/bash":"xfree" { system("id") } uprobe:"/bin/bash` }, "process"},
		{"newline in process", func(s *ScriptSpec) { s.Process = "/bin/bash\ninterval:s:1 { exit(); }" }, "process"},
		{"STAP quote in process", func(s *ScriptSpec) { s.Type = messages.STAP; s.Process = `/bin/bash").function("x` }, "process"},
		{"no functions", func(s *ScriptSpec) { s.Functions = nil }, "functions"},
		{"empty function", func(s *ScriptSpec) { s.Functions = []string{"xmalloc", ""} }, "functions[1]"},
		{"brace injection", func(s *ScriptSpec) { s.Functions = []string{`x} interval:s:1 { system("id")`} }, "functions[0]"},
		{"quote injection", func(s *ScriptSpec) { s.Functions = []string{`x":"y`} }, "functions[0]"},
		{"backslash", func(s *ScriptSpec) { s.Functions = []string{`x\"`} }, "functions[0]"},
		{"newline", func(s *ScriptSpec) { s.Functions = []string{"x\n}"} }, "functions[0]"},
		{"STAP injection", func(s *ScriptSpec) {
			s.Type = messages.STAP
			s.Functions = []string{`x").call { system("id") } probe begin { printf("`}
		}, "functions[0]"},
		{"BPF question mark", func(s *ScriptSpec) { s.Functions = []string{"x?ree"} }, "functions[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good
			tt.change(&spec)
			got, err := Script(spec)
			if err == nil {
				t.Fatalf("Script() accepted the spec and wrote:\n%s", got)
			}
			if got != nil {
				t.Errorf("Script() returned a script with its error")
			}
			if !errors.Is(err, validate.ErrInvalid) {
				t.Errorf("errors.Is(%v, validate.ErrInvalid) is false", err)
			}
			var fe *validate.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("Script() = %v, want a refusal of %s", err, tt.wantField)
			}
		})
	}
	if _, err := Script(good); err != nil {
		t.Fatalf("the good spec is refused: %v", err)
	}
}

// TestScriptQuote checks the generator's own guard, which does not depend
// on package validate: no byte that could end a quoted string, escape
// inside it or end the line is ever quoted.
func TestScriptQuote(t *testing.T) {
	got, err := scriptQuote("process", "/opt/a+b,c~d=e@f/x.y_z-1$*?")
	if err != nil || got != `"/opt/a+b,c~d=e@f/x.y_z-1$*?"` {
		t.Errorf(`scriptQuote(good) = %q, %v`, got, err)
	}
	for _, bad := range []string{"", `a"b`, `a\b`, "a\nb", "a\rb", "a\x00b", "a b", "a\tb", "a{b", "a}b", "a;b",
		"a:b", "a'b", "a`b", "a(b", "a)b", "a#b", "a%b", "a\x7fb", "a\u0430b", "\xff"} {
		if q, err := scriptQuote("functions[3]", bad); err == nil {
			t.Errorf("scriptQuote(%q) = %q, want an error", bad, q)
		} else if !errors.Is(err, validate.ErrInvalid) || !strings.HasPrefix(err.Error(), "functions[3]: ") {
			t.Errorf("scriptQuote(%q) error %q does not name the field or match ErrInvalid", bad, err)
		}
	}
	for b := 0; b < 256; b++ {
		if !scriptQuotable(byte(b)) {
			continue
		}
		if b <= ' ' || b >= 0x7f || b == '"' || b == '\\' || b == '\'' || b == '{' || b == '}' || b == ':' || b == ';' {
			t.Errorf("scriptQuotable(%q) is true", rune(b))
		}
	}
}

// scriptRequireBPFTrace returns the bpftrace path, or skips the test (fails
// it when CI=true) when bpftrace or root is missing.
func scriptRequireBPFTrace(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("bpftrace")
	reason := ""
	switch {
	case err != nil:
		reason = "bpftrace is not installed: " + err.Error()
	case os.Geteuid() != 0:
		reason = "bpftrace needs root and this test runs as uid " + fmt.Sprint(os.Geteuid())
	}
	if _, err := os.Stat("/bin/bash"); err != nil && reason == "" {
		reason = "/bin/bash, the traced program, is missing"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s", reason)
		}
		t.Skipf("SKIPPING the real bpftrace run: %s", reason)
	}
	return bin
}

// TestScriptBPFDryRun has bpftrace parse, check and compile (-d, a dry
// run that attaches nothing) every golden BPF script. A script for a binary
// that does not exist here is run against a copy of /bin/bash at that path
// under a temporary directory.
func TestScriptBPFDryRun(t *testing.T) {
	bpftrace := scriptRequireBPFTrace(t)
	bash, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, tc := range scriptGoldenCases {
		if tc.spec.Type != messages.BPF {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			script, err := os.ReadFile(scriptGoldenPath(tc.name, tc.spec.Type))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tc.spec.Process); err != nil {
				copied := filepath.Join(tmp, tc.spec.Process)
				if err := os.MkdirAll(filepath.Dir(copied), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(copied, bash, 0o755); err != nil {
					t.Fatal(err)
				}
				script = bytes.ReplaceAll(script, []byte(`"`+tc.spec.Process+`"`), []byte(`"`+copied+`"`))
			}
			file := filepath.Join(t.TempDir(), "trace.bt")
			if err := os.WriteFile(file, script, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if out, err := exec.CommandContext(ctx, bpftrace, "-d", file).CombinedOutput(); err != nil {
				t.Fatalf("bpftrace -d: %v\n%s", err, scriptTail(out, 2000))
			}
		})
	}
}

// scriptTail returns the last n bytes of b.
func scriptTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

var scriptAttachingRE = regexp.MustCompile(`^Attaching [0-9]+ probes?\.\.\.$`)

// TestScriptBPFRun runs generated scripts with the real bpftrace against
// bash and checks that every line it prints is one JSON event.
func TestScriptBPFRun(t *testing.T) {
	bpftrace := scriptRequireBPFTrace(t)
	// A copy of bash under a path that needs bpftrace's quoted form.
	dir := filepath.Join(t.TempDir(), "odd+dir,x=y@z~w")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "bash-copy.1")
	data, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, process string
		functions     []string
	}{
		{"bash", "/bin/bash", []string{"xmalloc", "xfree"}},
		{"odd path and wildcard", copied, []string{"xmall*", "xfree"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scriptRunBPF(t, bpftrace, tc.process, tc.functions)
		})
	}
}

// scriptRunBPF traces functions of process for 3 seconds while running
// "process -c true" again and again, then checks the output.
func scriptRunBPF(t *testing.T, bpftrace, process string, functions []string) {
	script, err := Script(ScriptSpec{Type: messages.BPF, Process: process, Functions: functions, Lasting: 3 * time.Second})
	if err != nil {
		t.Fatalf("Script() = %v", err)
	}
	file := filepath.Join(t.TempDir(), "trace.bt")
	if err := os.WriteFile(file, script, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bpftrace, file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// On every way out, bpftrace is killed and reaped, which closes stdout
	// and so ends the reader below.
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	first := make(chan string, 1)
	all := make(chan []string, 1)
	go func() {
		var out []string
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if out == nil {
				first <- sc.Text()
			}
			out = append(out, sc.Text())
		}
		close(first)
		all <- out
	}()
	if l, ok := <-first; !ok || !scriptAttachingRE.MatchString(l) {
		t.Fatalf("first stdout line %q, want \"Attaching N probes...\"", l)
	}
	// "Attaching" comes before the probes are attached, so keep running
	// the program until bpftrace exits.
	children := map[int]bool{}
	var out []string
	for out == nil {
		child := exec.CommandContext(ctx, process, "-c", "true")
		if err := child.Run(); err != nil {
			t.Fatalf("running %s -c true: %v", process, err)
		}
		children[child.Process.Pid] = true
		select {
		case all := <-all:
			out = all[1:] // after the "Attaching" line
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bpftrace: %v; stderr:\n%s", err, stderr.String())
	}

	entryKeys := []string{"cpu", "pid", "probe", "process", "tid", "time", "uid"}
	returnKeys := []string{"cpu", "pid", "process", "retval", "return", "tid", "time", "uid"}
	slices.Sort(returnKeys)
	var ourEntries, ourReturns int
	for i, l := range out {
		if l == "" {
			continue // bpftrace prints empty lines when it exits
		}
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		var ev map[string]any
		if err := dec.Decode(&ev); err != nil || dec.More() {
			t.Fatalf("line %d is not one JSON object (%v): %q", i+2, err, l)
		}
		keys := make([]string, 0, len(ev))
		for k := range ev {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		name, isEntry := ev["probe"].(string)
		prefix := "uprobe:"
		want := entryKeys
		if !isEntry {
			name, _ = ev["return"].(string)
			prefix = "uretprobe:"
			want = returnKeys
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("line %d has keys %q, want %q: %s", i+2, keys, want, l)
		}
		fn, found := strings.CutPrefix(name, prefix+process+":")
		if !found || !slices.ContainsFunc(functions, func(p string) bool { ok, _ := path.Match(p, fn); return ok }) {
			t.Fatalf("line %d names probe %q, not one of %s%s:%q", i+2, name, prefix, process, functions)
		}
		for _, k := range []string{"uid", "pid", "tid", "cpu", "time", "retval"} {
			if v, ok := ev[k]; ok {
				if _, isNum := v.(json.Number); !isNum {
					t.Fatalf("line %d: %s is %T, want a number: %s", i+2, k, v, l)
				}
			}
		}
		if _, ok := ev["process"].(string); !ok {
			t.Fatalf("line %d: process is not a string: %s", i+2, l)
		}
		pid, _ := ev["pid"].(json.Number).Int64()
		if !children[int(pid)] {
			continue // bash run by someone else on this host
		}
		if ev["process"] != filepath.Base(process) || ev["uid"].(json.Number).String() != fmt.Sprint(os.Getuid()) {
			t.Errorf("line %d: event of our child has process %v, uid %v: %s", i+2, ev["process"], ev["uid"], l)
		}
		if isEntry {
			ourEntries++
		} else {
			ourReturns++
		}
	}
	if ourEntries == 0 || ourReturns == 0 {
		t.Fatalf("saw %d entry and %d return events from our %d children in %d lines; stderr:\n%s",
			ourEntries, ourReturns, len(children), len(out), stderr.String())
	}
	t.Logf("%d lines, %d entry and %d return events from our %d children", len(out), ourEntries, ourReturns, len(children))
}

func FuzzScript(f *testing.F) {
	f.Add("/bin/bash", "xmalloc", "xfree", "BPF", int64(60))
	f.Add("/opt/a+b,c~d=e@f/x", "dollar$fn", "x?y", "STAP", int64(172800))
	f.Add("/bin/bash", `x} interval:s:1 { system("id")`, `x":"y`, "BPF", int64(1))
	f.Add("/bin/bash\n", "a\nb", "\\", "STAP", int64(0))
	processRE := regexp.MustCompile(`^(/|(/[A-Za-z0-9._+@,~=-]+)+)$`)
	functionRE := regexp.MustCompile(`^[A-Za-z0-9_.$@*?]+$`)
	f.Fuzz(func(t *testing.T, process, fn1, fn2, typ string, seconds int64) {
		spec := ScriptSpec{Type: messages.TraceType(typ), Process: process, Functions: []string{fn1, fn2},
			Lasting: time.Duration(seconds) * time.Second}
		script, err := Script(spec)
		if err != nil {
			if !errors.Is(err, validate.ErrInvalid) {
				t.Fatalf("Script() error %v does not match validate.ErrInvalid", err)
			}
			return
		}
		if !processRE.MatchString(process) || !functionRE.MatchString(fn1) || !functionRE.MatchString(fn2) {
			t.Fatalf("Script() accepted process %q, functions %q, %q", process, fn1, fn2)
		}
		n := 2
		if fn1 == fn2 {
			n = 1
		}
		// Header, then per function a blank line and two 3-line probes,
		// then a blank line and the timer (3 lines for long STAP traces).
		lines := 1 + 7*n + 2
		if spec.Type == messages.STAP && spec.Lasting/time.Second > stapMaxTimer {
			lines += 2
		}
		if got := bytes.Count(script, []byte("\n")); got != lines {
			t.Fatalf("script has %d lines, want %d:\n%s", got, lines, script)
		}
	})
}

func ExampleScript() {
	script, err := Script(ScriptSpec{
		Type:      messages.BPF,
		Process:   "/bin/bash",
		Functions: []string{"xmalloc"},
		Lasting:   30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(script))

	_, err = Script(ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"x y"}, Lasting: time.Second})
	fmt.Println(err)
	// Output:
	// // Generated by lambda-endpoint: one JSON line per function entry and return.
	//
	// uprobe:"/bin/bash":"xmalloc" {
	// 	printf("{\"probe\":\"%s\",\"uid\":%u,\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"time\":%llu,\"process\":\"%s\"}\n", probe, uid, pid, tid, cpu, nsecs, comm);
	// }
	// uretprobe:"/bin/bash":"xmalloc" {
	// 	printf("{\"return\":\"%s\",\"uid\":%u,\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"time\":%llu,\"process\":\"%s\",\"retval\":%ld}\n", probe, uid, pid, tid, cpu, nsecs, comm, retval);
	// }
	//
	// interval:s:30 { exit(); }
	// generating STAP script: functions[0]: "x y" has characters outside [A-Za-z0-9_.$@*?]
}
