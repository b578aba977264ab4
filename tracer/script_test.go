package tracer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/bits"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
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
	{"bpf_entryonly", ScriptSpec{Type: messages.BPF, Process: "/opt/svc/bin/server", Functions: []string{"main.work", "main.handle*", "main.work"},
		Lasting: time.Minute, EntryOnly: true}},
	{"stap_entryonly", ScriptSpec{Type: messages.STAP, Process: "/opt/svc/bin/server", Functions: []string{"main.work", "main.handle*"},
		Lasting: time.Minute, Mode: messages.ModeEvents, EntryOnly: true}},

	{"bpf_calls_single", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour,
		Mode: messages.ModeCalls}},
	{"bpf_calls_several", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc", "xfree"},
		Lasting: time.Minute, Mode: messages.ModeCalls}},
	{"bpf_calls_wildcard", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmall*", "*_alloc"},
		Lasting: 10 * time.Second, Mode: messages.ModeCalls}},
	{"bpf_calls_symbols", ScriptSpec{Type: messages.BPF, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "memcpy@GLIBC_2.2.5", "_ZN3fooC2Ev"}, Lasting: 5 * time.Second, Mode: messages.ModeCalls}},
	{"bpf_summary_single", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour,
		Mode: messages.ModeSummary}},
	{"bpf_summary_several", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc", "xfree"},
		Lasting: 24 * time.Hour, Mode: messages.ModeSummary}},
	{"bpf_summary_wildcard", ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc", "*_alloc"},
		Lasting: 10 * time.Second, Mode: messages.ModeSummary}},
	{"bpf_summary_symbols", ScriptSpec{Type: messages.BPF, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "memcpy@GLIBC_2.2.5", "_ZN3fooC2Ev"}, Lasting: 5 * time.Second, Mode: messages.ModeSummary}},
	{"stap_calls_single", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour,
		Mode: messages.ModeCalls}},
	{"stap_calls_several", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc", "xfree"},
		Lasting: 48 * time.Hour, Mode: messages.ModeCalls}},
	{"stap_calls_wildcard", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmall*", "*_alloc", "x?ree"},
		Lasting: 10 * time.Second, Mode: messages.ModeCalls}},
	{"stap_calls_symbols", ScriptSpec{Type: messages.STAP, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "main@shell.c"}, Lasting: 5 * time.Second, Mode: messages.ModeCalls}},
	{"stap_summary_single", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Hour,
		Mode: messages.ModeSummary}},
	{"stap_summary_several", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree", "xrealloc", "xfree"},
		Lasting: 48 * time.Hour, Mode: messages.ModeSummary}},
	{"stap_summary_wildcard", ScriptSpec{Type: messages.STAP, Process: "/bin/bash", Functions: []string{"xmall*", "*_alloc", "x?ree"},
		Lasting: 10 * time.Second, Mode: messages.ModeSummary}},
	{"stap_summary_symbols", ScriptSpec{Type: messages.STAP, Process: "/opt/app-1.2+build,x=y@z~w/bin/my.app",
		Functions: []string{"dollar$fn", "foo.cold", "main@shell.c"}, Lasting: 5 * time.Second, Mode: messages.ModeSummary}},
}

// scriptGoldenArch is the architecture the golden scripts are written for,
// whatever the machine running the tests.
const scriptGoldenArch = "amd64"

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
			spec := tc.spec
			if spec.CPUs == 0 {
				spec.CPUs = 4 // the golden scripts' host
			}
			got, err := scriptFor(spec, scriptGoldenArch)
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
			spec := tc.spec
			if spec.CPUs == 0 {
				spec.CPUs = 4 // the golden scripts' host
			}
			got, err := scriptFor(spec, scriptGoldenArch)
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
			bpf := tc.spec.Type == messages.BPF
			var entryFmt, retFmt string
			switch {
			case bpf && (tc.spec.Mode == "" || tc.spec.Mode == messages.ModeEvents):
				entryFmt, retFmt = "uprobe:%q:%q {\n", "uretprobe:%q:%q {\n"
			case bpf:
				entryFmt, retFmt = "uprobe:%q:%q\n", "uretprobe:%q:%q\n"
			case tc.spec.Mode == "" || tc.spec.Mode == messages.ModeEvents:
				entryFmt, retFmt = "probe process(%q).function(%q).call {\n", "probe process(%q).function(%q).return {\n"
			default:
				entryFmt, retFmt = "process(%q).function(%q).call\n", "process(%q).function(%q).return\n"
			}
			wantRet := 1 // entry-only scripts (Go binaries) have no return probe
			if tc.spec.EntryOnly {
				wantRet = 0
			}
			for _, f := range unique {
				for i, p := range []string{fmt.Sprintf(entryFmt, tc.spec.Process, f), fmt.Sprintf(retFmt, tc.spec.Process, f)} {
					want := 1
					if i == 1 {
						want = wantRet
					}
					// In a probe list every probe but the last ends with a comma.
					if n := strings.Count(s, p) + strings.Count(s, strings.TrimSuffix(p, "\n")+",\n"); n != want {
						t.Errorf("probe %q appears %d times, want %d", p, n, want)
					}
				}
			}
			// events: one printf per event; calls: one at return; summary:
			// none before the end probe.
			events := (1 + wantRet) * len(unique)
			wantPrintfs := map[messages.Mode]int{"": events, messages.ModeEvents: events, messages.ModeCalls: 1}[tc.spec.Mode]
			end := len(s)
			if tc.spec.Mode == messages.ModeSummary {
				marker := "\nEND {\n"
				if !bpf {
					marker = "\nprobe end\n{\n"
				}
				end = strings.Index(s, marker)
				if end < 0 || strings.Count(s, marker) != 1 {
					t.Fatalf("summary script has not exactly one %q", marker)
				}
				if bpf && (!strings.Contains(s, fmt.Sprintf("while ($slot <= %d) {", summarySlots(unique))) ||
					!strings.Contains(s, fmt.Sprintf("while ($i <= %d) {", summaryMaxCells))) {
					t.Errorf("END does not walk %d cells and %d functions", summaryMaxCells, summarySlots(unique))
				}
			}
			if got := strings.Count(s[:end], "printf("); got != wantPrintfs {
				t.Errorf("%d printf calls before the end, want %d", got, wantPrintfs)
			}
			secs := int64(tc.spec.Lasting / time.Second)
			var timer string
			switch {
			case bpf:
				timer = fmt.Sprintf("\ninterval:s:%d { exit(); }\n", secs)
			case secs <= 86400:
				timer = fmt.Sprintf("\nprobe timer.s(%d) { exit() }\n", secs)
			default:
				timer = fmt.Sprintf("lambda_deadline = gettimeofday_s() + %d }\n", secs)
			}
			if strings.Count(s, timer) != 1 {
				t.Errorf("script lacks %q", timer)
			}
			if bpf && tc.spec.Mode != "" && tc.spec.Mode != messages.ModeEvents && !strings.Contains(s, "\tclear(@lambda_start);\n}\n") {
				t.Errorf("END does not clear @lambda_start, which bpftrace would print at exit")
			}
		})
	}
}

func TestScriptModeAndDuplicates(t *testing.T) {
	for _, typ := range []messages.TraceType{messages.BPF, messages.STAP} {
		for _, mode := range []messages.Mode{"", messages.ModeCalls, messages.ModeSummary} {
			base := ScriptSpec{Type: typ, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"}, Lasting: 5 * time.Second, Mode: mode}
			want, err := Script(base)
			if err != nil {
				t.Fatal(err)
			}
			specs := map[string]ScriptSpec{}
			if mode == "" {
				events := base
				events.Mode = messages.ModeEvents
				specs["events mode"] = events
			}
			dups := base
			dups.Functions = []string{"xmalloc", "xmalloc", "xfree", "xmalloc", "xfree"}
			specs["duplicates"] = dups
			for name, spec := range specs {
				got, err := Script(spec)
				if err != nil {
					t.Fatalf("%s %q %s: %v", typ, mode, name, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s %q %s: script differs from the plain one:\n%s", typ, mode, name, got)
				}
			}
		}
	}
}

// TestScriptModesDiffer checks that each mode writes its own program, with
// its own header.
func TestScriptModesDiffer(t *testing.T) {
	headers := map[messages.Mode]string{
		messages.ModeEvents:  "one JSON line per function entry and return.\n",
		messages.ModeCalls:   "one JSON line per completed call.\n",
		messages.ModeSummary: "per function a call count and a latency histogram,\n",
	}
	for _, typ := range []messages.TraceType{messages.BPF, messages.STAP} {
		seen := map[string]messages.Mode{}
		for mode, header := range headers {
			got, err := Script(ScriptSpec{Type: typ, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Minute, Mode: mode})
			if err != nil {
				t.Fatalf("%s %s: %v", typ, mode, err)
			}
			first, _, _ := strings.Cut(string(got), "\n")
			if !strings.HasSuffix(first+"\n", header) {
				t.Errorf("%s %s: first line %q does not end with %q", typ, mode, first, header)
			}
			if other, dup := seen[string(got)]; dup {
				t.Errorf("%s: modes %s and %s write the same script", typ, mode, other)
			}
			seen[string(got)] = mode
		}
	}
}

// TestScriptArch checks how return probes find their entry on each
// architecture, and that Script uses the machine's.
func TestScriptArch(t *testing.T) {
	tests := []struct {
		arch             string
		bpfKey, bpfFind  string
		stapKey, stapRet string
	}{
		{"amd64", `@lambda_start[tid, reg("sp")] = `, `$sp = reg("sp") - 8;`, `lambda_start[tid(), register("rsp")] = `, `sp = register("rsp") - 8`},
		{"arm64", `@lambda_start[tid, reg("sp")] = `, `$sp = reg("sp");`, `lambda_start[tid(), register("sp")] = `, `sp = register("sp")` + "\n"},
		{"riscv64", `@lambda_start[tid, 0] = `, `$sp = 0;`, `lambda_start[tid(), 0] = `, "sp = 0\n"},
	}
	for _, tt := range tests {
		for _, mode := range []messages.Mode{messages.ModeCalls, messages.ModeSummary} {
			for typ, want := range map[messages.TraceType][]string{messages.BPF: {tt.bpfKey, tt.bpfFind}, messages.STAP: {tt.stapKey, tt.stapRet}} {
				got, err := scriptFor(ScriptSpec{Type: typ, Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"},
					Lasting: time.Minute, Mode: mode}, tt.arch)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range want {
					if n := strings.Count(string(got), w); n != 1 {
						t.Errorf("%s %s %s: %q appears %d times, want 1:\n%s", tt.arch, typ, mode, w, n, got)
					}
				}
			}
		}
	}
	spec := ScriptSpec{Type: messages.BPF, Process: "/bin/bash", Functions: []string{"xmalloc"}, Lasting: time.Minute, Mode: messages.ModeCalls}
	got, _ := Script(spec)
	want, _ := scriptFor(spec, runtime.GOARCH)
	if !bytes.Equal(got, want) {
		t.Errorf("Script() does not write the script of %s", runtime.GOARCH)
	}
}

func TestScriptSummarySlots(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	tests := []struct {
		functions []string
		want      int
	}{
		{[]string{"xmalloc"}, 1},
		{[]string{"xmalloc", "xfree", "xrealloc"}, 3},
		{[]string{"xmall*"}, 1 + summaryWildcardFunctions},
		{[]string{"xmalloc", "x?ree"}, 2 + summaryWildcardFunctions},
		{[]string{"a*", "b*", "c", "d", "e", "f", "g", "h", "i"}, summaryMaxFunctions},
		{many, summaryMaxFunctions},
	}
	for _, tt := range tests {
		if got := summarySlots(tt.functions); got != tt.want {
			t.Errorf("summarySlots(%q) = %d, want %d", tt.functions, got, tt.want)
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
		{"upper-case mode", func(s *ScriptSpec) { s.Mode = "CALLS" }, "mode"},
		{"STAP unknown mode", func(s *ScriptSpec) { s.Type = messages.STAP; s.Mode = "summary\n" }, "mode"},
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
// run that attaches nothing) every golden BPF script, without warnings. A
// script for a binary that does not exist here is run against a copy of
// /bin/bash at that path under a temporary directory.
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
			cmd := exec.CommandContext(ctx, bpftrace, "-d", file)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("bpftrace -d: %v\n%s", err, scriptTail(stderr.Bytes(), 2000))
			}
			// Warnings would reach the trace's stderr report.
			if bytes.Contains(stderr.Bytes(), []byte("WARNING")) {
				t.Errorf("bpftrace -d warns:\n%s", stderr.Bytes())
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

// TestScriptBPFRun runs generated scripts of every mode with the real
// bpftrace against bash and checks every line they print.
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
	checks := map[messages.Mode]func(*testing.T, ScriptSpec, []scriptLine, map[int]bool){
		messages.ModeEvents:  scriptCheckEvents,
		messages.ModeCalls:   scriptCheckCalls,
		messages.ModeSummary: scriptCheckSummary,
	}
	for _, tc := range []struct {
		name, process string
		functions     []string
	}{
		{"bash", "/bin/bash", []string{"xmalloc", "xfree"}},
		{"odd path and wildcard", copied, []string{"xmall*", "xfree"}},
	} {
		for _, mode := range []messages.Mode{messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
			t.Run(tc.name+"/"+string(mode), func(t *testing.T) {
				spec := ScriptSpec{Type: messages.BPF, Process: tc.process, Functions: tc.functions, Lasting: 3 * time.Second, Mode: mode}
				lines, children := scriptRunBPF(t, bpftrace, spec)
				checks[mode](t, spec, lines, children)
			})
		}
	}
}

// scriptTracedC is a program whose calls the exactness test knows: two
// threads call lambda_work argv[1] times each, at the same time on
// different CPUs, then main calls the recursive lambda_fib(argv[2]).
const scriptTracedC = `#include <pthread.h>
#include <stdlib.h>

__attribute__((noinline)) long lambda_work(long x) { __asm__ volatile(""); return x + 1; }

__attribute__((noinline)) long lambda_fib(long n) {
	__asm__ volatile("");
	return n < 2 ? n : lambda_fib(n - 1) + lambda_fib(n - 2);
}

static long calls;

static void *run(void *arg) {
	long s = 0;
	for (long i = 0; i < calls; i++)
		s = lambda_work(s);
	return (void *)s;
}

int main(int argc, char **argv) {
	pthread_t t[2];
	calls = atol(argv[1]);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], 0, run, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], 0);
	return lambda_fib(atol(argv[2])) > 0 ? 0 : 1;
}
`

// scriptFibReturns returns the return values of every call that
// lambda_fib(n) makes, itself included.
func scriptFibReturns(n int64, into map[int64]int) int64 {
	v := n
	if n >= 2 {
		v = scriptFibReturns(n-1, into) + scriptFibReturns(n-2, into)
	}
	into[v]++
	return v
}

// TestScriptBPFModesExact runs modes calls and summary over a program that
// makes a known number of calls, from two threads on two CPUs at once and
// recursively, and checks that every call is reported exactly once: no
// increment lost between CPUs, nested calls paired with their own entry.
func TestScriptBPFModesExact(t *testing.T) {
	bpftrace := scriptRequireBPFTrace(t)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but gcc, which builds the traced program, is missing: %v", err)
		}
		t.Skipf("SKIPPING: gcc, which builds the traced program, is missing: %v", err)
	}
	dir := t.TempDir()
	src, prog := filepath.Join(dir, "traced.c"), filepath.Join(dir, "traced")
	if err := os.WriteFile(src, []byte(scriptTracedC), 0o600); err != nil {
		t.Fatal(err)
	}
	// -O0 keeps the recursion a recursion.
	if out, err := exec.Command(gcc, "-O0", "-pthread", "-o", prog, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	const perThread, fibN = 20000, 12
	wantFib := map[int64]int{}
	scriptFibReturns(fibN, wantFib)
	fibCalls := 0
	for _, n := range wantFib {
		fibCalls += n
	}
	work, fib := "uprobe:"+prog+":lambda_work", "uprobe:"+prog+":lambda_fib"

	for _, mode := range []messages.Mode{messages.ModeCalls, messages.ModeSummary} {
		t.Run(string(mode), func(t *testing.T) {
			script, err := Script(ScriptSpec{Type: messages.BPF, Process: prog, Functions: []string{"lambda_work", "lambda_fib"},
				Lasting: time.Minute, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "trace.bt")
			if err := os.WriteFile(file, script, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// -c runs the program once the probes are attached and ends
			// the trace when it exits. The larger ring buffer keeps
			// bpftrace from dropping events of mode calls.
			cmd := exec.CommandContext(ctx, bpftrace, file, "-c", prog+" "+strconv.Itoa(perThread)+" "+strconv.Itoa(fibN))
			cmd.Env = append(os.Environ(), "BPFTRACE_PERF_RB_PAGES=1024")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bpftrace: %v; stderr:\n%s", err, scriptTail(stderr.Bytes(), 2000))
			}
			calls := map[string]int{}
			fibReturns := map[int64]int{}
			summaries := map[string]int64{}
			for i, l := range strings.Split(string(out), "\n") {
				if l == "" || scriptAttachingRE.MatchString(l) {
					continue
				}
				dec := json.NewDecoder(strings.NewReader(l))
				dec.UseNumber()
				var ev map[string]any
				if err := dec.Decode(&ev); err != nil {
					t.Fatalf("line %d is not JSON (%v): %q", i+1, err, l)
				}
				name, _ := ev["function"].(string)
				if mode == messages.ModeSummary {
					n, ok := ev["calls"].(json.Number)
					if !ok {
						t.Fatalf("line %d is not a function's summary: %s", i+1, l)
					}
					summaries[name], _ = n.Int64()
					continue
				}
				calls[name]++
				if name == fib {
					r, _ := ev["retval"].(json.Number).Int64()
					fibReturns[r]++
				}
				if d, err := strconv.ParseUint(ev["duration"].(json.Number).String(), 10, 64); err != nil || d > uint64(time.Minute) {
					t.Errorf("line %d: duration %v is not a plausible number of nanoseconds: %s", i+1, ev["duration"], l)
				}
			}
			if mode == messages.ModeSummary {
				want := map[string]int64{work: 2 * perThread, fib: int64(fibCalls)}
				if !maps.Equal(summaries, want) {
					t.Errorf("summary calls %v, want %v", summaries, want)
				}
				return
			}
			if want := map[string]int{work: 2 * perThread, fib: fibCalls}; !maps.Equal(calls, want) {
				t.Errorf("lines per function %v, want %v", calls, want)
			}
			if !maps.Equal(fibReturns, wantFib) {
				t.Errorf("lambda_fib return values %v, want %v", fibReturns, wantFib)
			}
		})
	}
}

// scriptLine is one JSON line a tracer printed.
type scriptLine struct {
	no     int            // line number in stdout, from 1
	text   string         // the line
	fields map[string]any // the decoded object; numbers are json.Number
}

// scriptRunBPF traces spec (3 seconds) while running "process -c true"
// again and again. It returns the JSON lines bpftrace printed after its
// "Attaching" banner, each decoded (the test fails on any other line but
// empty ones), and the PIDs of the children it ran.
func scriptRunBPF(t *testing.T, bpftrace string, spec ScriptSpec) ([]scriptLine, map[int]bool) {
	t.Helper()
	script, err := Script(spec)
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
		t.Fatalf("first stdout line %q, want \"Attaching N probes...\"; stderr:\n%s", l, scriptTail(stderr.Bytes(), 2000))
	}
	// "Attaching" comes before the probes are attached, so keep running
	// the program until bpftrace exits.
	children := map[int]bool{}
	var out []string
	for out == nil {
		child := exec.CommandContext(ctx, spec.Process, "-c", "true")
		if err := child.Run(); err != nil {
			t.Fatalf("running %s -c true: %v", spec.Process, err)
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
	var lines []scriptLine
	for i, l := range out {
		if l == "" {
			continue // bpftrace prints empty lines when it exits
		}
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		var fields map[string]any
		if err := dec.Decode(&fields); err != nil || dec.More() {
			t.Fatalf("line %d is not one JSON object (%v): %q", i+2, err, l)
		}
		lines = append(lines, scriptLine{no: i + 2, text: l, fields: fields})
	}
	t.Logf("%d JSON lines while %d children ran", len(lines), len(children))
	return lines, children
}

// scriptKeys returns the sorted keys of m.
func scriptKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// scriptCheckProbeName fails the test unless name is "<prefix><process>:f"
// for an f matched by one of spec's functions, and returns f.
func scriptCheckProbeName(t *testing.T, l scriptLine, spec ScriptSpec, prefix, name string) string {
	t.Helper()
	fn, found := strings.CutPrefix(name, prefix+spec.Process+":")
	if !found || !slices.ContainsFunc(spec.Functions, func(p string) bool { ok, _ := path.Match(p, fn); return ok }) {
		t.Fatalf("line %d names probe %q, not one of %s%s:%q", l.no, name, prefix, spec.Process, spec.Functions)
	}
	return fn
}

// scriptCheckNumbers fails the test unless every key of l present in keys
// is a JSON integer (signed when it is retval).
func scriptCheckNumbers(t *testing.T, l scriptLine, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := l.fields[k]
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		if !isNum {
			t.Fatalf("line %d: %s is %T, want a number: %s", l.no, k, v, l.text)
		}
		var err error
		if k == "retval" {
			_, err = strconv.ParseInt(n.String(), 10, 64)
		} else {
			_, err = strconv.ParseUint(n.String(), 10, 64)
		}
		if err != nil {
			t.Fatalf("line %d: %s is not an integer in range: %s", l.no, k, l.text)
		}
	}
}

// scriptOurs reports whether l is about one of children, and checks then
// that its process and uid are theirs.
func scriptOurs(t *testing.T, l scriptLine, spec ScriptSpec, children map[int]bool) bool {
	t.Helper()
	if _, ok := l.fields["process"].(string); !ok {
		t.Fatalf("line %d: process is not a string: %s", l.no, l.text)
	}
	pid, _ := l.fields["pid"].(json.Number).Int64()
	if !children[int(pid)] {
		return false // bash run by someone else on this host
	}
	if l.fields["process"] != filepath.Base(spec.Process) || l.fields["uid"].(json.Number).String() != fmt.Sprint(os.Getuid()) {
		t.Errorf("line %d: event of our child has process %v, uid %v: %s", l.no, l.fields["process"], l.fields["uid"], l.text)
	}
	return true
}

// scriptCheckEvents checks the lines of mode events: entry and return
// events with their fields, both seen for our children.
func scriptCheckEvents(t *testing.T, spec ScriptSpec, lines []scriptLine, children map[int]bool) {
	entryKeys := []string{"cpu", "pid", "probe", "process", "tid", "time", "uid"}
	returnKeys := []string{"cpu", "pid", "process", "return", "retval", "tid", "time", "uid"}
	var ourEntries, ourReturns int
	for _, l := range lines {
		name, isEntry := l.fields["probe"].(string)
		prefix := "uprobe:"
		want := entryKeys
		if !isEntry {
			name, _ = l.fields["return"].(string)
			prefix = "uretprobe:"
			want = returnKeys
		}
		if keys := scriptKeys(l.fields); !slices.Equal(keys, want) {
			t.Fatalf("line %d has keys %q, want %q: %s", l.no, keys, want, l.text)
		}
		scriptCheckProbeName(t, l, spec, prefix, name)
		scriptCheckNumbers(t, l, "uid", "pid", "tid", "cpu", "time", "retval")
		if !scriptOurs(t, l, spec, children) {
			continue
		}
		if isEntry {
			ourEntries++
		} else {
			ourReturns++
		}
	}
	if ourEntries == 0 || ourReturns == 0 {
		t.Fatalf("saw %d entry and %d return events from our %d children in %d lines", ourEntries, ourReturns, len(children), len(lines))
	}
}

// scriptCheckCalls checks the lines of mode calls: one per completed call,
// with a duration and the return value (a pointer, not 0, for xmalloc).
func scriptCheckCalls(t *testing.T, spec ScriptSpec, lines []scriptLine, children map[int]bool) {
	want := []string{"cpu", "duration", "function", "pid", "process", "retval", "tid", "time", "uid"}
	ours := map[string]int{}
	for _, l := range lines {
		if keys := scriptKeys(l.fields); !slices.Equal(keys, want) {
			t.Fatalf("line %d has keys %q, want %q: %s", l.no, keys, want, l.text)
		}
		name, _ := l.fields["function"].(string)
		fn := scriptCheckProbeName(t, l, spec, "uprobe:", name)
		scriptCheckNumbers(t, l, "uid", "pid", "tid", "cpu", "time", "duration", "retval")
		if !scriptOurs(t, l, spec, children) {
			continue
		}
		ours[fn]++
		if fn == "xmalloc" && l.fields["retval"].(json.Number).String() == "0" {
			t.Errorf("line %d: xmalloc returned NULL: %s", l.no, l.text)
		}
	}
	if ours["xmalloc"] == 0 || ours["xfree"] == 0 {
		t.Fatalf("saw calls %v from our %d children in %d lines, want xmalloc and xfree", ours, len(children), len(lines))
	}
}

// scriptCheckSummary checks the lines of mode summary: at most one per
// function (so nothing was printed per event), each with a histogram of
// non-empty log2 buckets in increasing order whose counts add up to calls.
// Only our children run the copy of bash, so its counts must cover them.
func scriptCheckSummary(t *testing.T, spec ScriptSpec, lines []scriptLine, children map[int]bool) {
	want := []string{"calls", "function", "hist"}
	calls := map[string]uint64{}
	for _, l := range lines {
		if keys := scriptKeys(l.fields); !slices.Equal(keys, want) {
			t.Fatalf("line %d has keys %q, want %q: %s", l.no, keys, want, l.text)
		}
		name, _ := l.fields["function"].(string)
		fn := scriptCheckProbeName(t, l, spec, "uprobe:", name)
		if _, dup := calls[fn]; dup {
			t.Fatalf("line %d: second line for %s: %s", l.no, fn, l.text)
		}
		scriptCheckNumbers(t, l, "calls")
		n, _ := strconv.ParseUint(l.fields["calls"].(json.Number).String(), 10, 64)
		if n == 0 {
			t.Errorf("line %d: a function without calls: %s", l.no, l.text)
		}
		calls[fn] = n
		hist, ok := l.fields["hist"].([]any)
		if !ok || len(hist) == 0 {
			t.Fatalf("line %d: hist is not a non-empty array: %s", l.no, l.text)
		}
		var sum uint64
		last := -1
		for _, h := range hist {
			bucket, ok := h.(map[string]any)
			if !ok || !slices.Equal(scriptKeys(bucket), []string{"count", "le_ns"}) {
				t.Fatalf("line %d: bucket %v is not {le_ns, count}: %s", l.no, h, l.text)
			}
			le, err1 := strconv.ParseUint(fmt.Sprint(bucket["le_ns"]), 10, 64)
			count, err2 := strconv.ParseUint(fmt.Sprint(bucket["count"]), 10, 64)
			b := bits.Len64(le)
			if err1 != nil || err2 != nil || le != 1<<b-1 || b <= last || count == 0 {
				t.Fatalf("line %d: bucket %v is not a non-empty 2^b-1 bucket above the previous one: %s", l.no, h, l.text)
			}
			last = b
			sum += count
		}
		if sum != n {
			t.Errorf("line %d: buckets add up to %d, not calls %d: %s", l.no, sum, n, l.text)
		}
	}
	if calls["xmalloc"] == 0 || calls["xfree"] == 0 {
		t.Fatalf("summary %v lacks xmalloc or xfree", calls)
	}
	if spec.Process != "/bin/bash" && calls["xmalloc"] < uint64(len(children)) {
		t.Errorf("%d xmalloc calls, fewer than the %d children that ran %s", calls["xmalloc"], len(children), spec.Process)
	}
}

func FuzzScript(f *testing.F) {
	f.Add("/bin/bash", "xmalloc", "xfree", "BPF", int64(60), "")
	f.Add("/opt/a+b,c~d=e@f/x", "dollar$fn", "x?y", "STAP", int64(172800), "events")
	f.Add("/bin/bash", `x} interval:s:1 { system("id")`, `x":"y`, "BPF", int64(1), "calls")
	f.Add("/bin/bash\n", "a\nb", "\\", "STAP", int64(0), "summary")
	f.Add("/usr/bin/x", "a*", "a*", "BPF", int64(86401), "summary")
	f.Add("/usr/bin/x", "FUNCONE", "b?", "STAP", int64(86401), "calls")
	f.Add("/bin/sh", "sh", "sh", "BPF", int64(5), "counts")
	processRE := regexp.MustCompile(`^(/|(/[A-Za-z0-9._+@,~=-]+)+)$`)
	functionRE := regexp.MustCompile(`^[A-Za-z0-9_.$@*?]+$`)
	f.Fuzz(func(t *testing.T, process, fn1, fn2, typ string, seconds int64, mode string) {
		spec := ScriptSpec{Type: messages.TraceType(typ), Process: process, Functions: []string{fn1, fn2},
			Lasting: time.Duration(seconds) * time.Second, Mode: messages.Mode(mode)}
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
		// The names are the only variable text: the script is the one
		// written for placeholder names, with the names put in.
		placeholder := func(name, fn string) string {
			if strings.ContainsAny(fn, "*?") {
				return name + "*"
			}
			return name
		}
		tmpl := spec
		tmpl.Process = "/PROCESSX"
		tmpl.Functions = []string{placeholder("FUNCONE", fn1), placeholder("FUNCTWO", fn2)}
		if fn1 == fn2 {
			tmpl.Functions[1] = tmpl.Functions[0]
		}
		want, err := Script(tmpl)
		if err != nil {
			t.Fatalf("Script(placeholders) = %v", err)
		}
		r := strings.NewReplacer(`"/PROCESSX"`, `"`+process+`"`, `"`+tmpl.Functions[0]+`"`, `"`+fn1+`"`, `"`+tmpl.Functions[1]+`"`, `"`+fn2+`"`)
		if got := r.Replace(string(want)); got != string(script) {
			t.Fatalf("script differs from the placeholder script with the names put in:\n%s\n--- want\n%s", script, got)
		}
		if mode != "" && mode != string(messages.ModeEvents) {
			return
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

// TestScriptEntryOnly checks that no script for an entry-only (Go) binary
// holds a return probe: mode events writes entry probes alone, the modes
// that need returns are refused naming the mode.
func TestScriptEntryOnly(t *testing.T) {
	for _, typ := range []messages.TraceType{messages.BPF, messages.STAP} {
		for _, mode := range []messages.Mode{"", messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
			spec := ScriptSpec{Type: typ, Process: "/opt/svc/server", Functions: []string{"main.work", "main.h*"},
				Lasting: time.Minute, Mode: mode, EntryOnly: true}
			got, err := Script(spec)
			if mode == messages.ModeCalls || mode == messages.ModeSummary {
				var fe *validate.FieldError
				if !errors.As(err, &fe) || fe.Field != "mode" || !errors.Is(err, validate.ErrInvalid) || got != nil {
					t.Errorf("%s %q: Script = %q, %v; want a refusal of mode", typ, mode, got, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %q: %v", typ, mode, err)
			}
			for _, forbidden := range []string{"uretprobe", ".return", "retval"} {
				if bytes.Contains(got, []byte(forbidden)) {
					t.Errorf("%s %q: entry-only script holds %q:\n%s", typ, mode, forbidden, got)
				}
			}
			if n := bytes.Count(got, []byte(`main.`)); n != 2 {
				t.Errorf("%s %q: %d probes, want 2:\n%s", typ, mode, n, got)
			}
		}
	}
}
