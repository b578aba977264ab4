package validate_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Independent restatements of the allow-lists: FuzzTemplate checks every
// accepted template against these, not against the package's own code.
var (
	fuzzProcessRE  = regexp.MustCompile(`^(/|(/[A-Za-z0-9._+@,~=-]{1,255})+)$`)
	fuzzFunctionRE = regexp.MustCompile(`^[A-Za-z0-9_.$@*?]{1,256}$`)
	fuzzEnvNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fuzzNumberRE   = regexp.MustCompile(`^[1-9][0-9]{0,6}$`)
	fuzzFlags      = map[messages.TraceType]map[string]bool{
		messages.BPF:  {"-B": true, "-f": true, "-v": true, "-k": true, "-kk": true, "--no-warnings": true, "-q": true, "-p": true},
		messages.STAP: {"-v": true, "-vv": true, "-vvv": true, "-w": true, "-x": true, "-s": true, "--suppress-handler-errors": true},
	}
	fuzzWords = map[string]bool{"none": true, "line": true, "full": true, "text": true, "json": true}
)

func FuzzTemplate(f *testing.F) {
	f.Add("/bin/bash", "xmalloc", "xfree", "BPFTRACE_STRLEN", "128", "-B", "line", "BPF", false)
	f.Add("/usr/bin/a+b,c~d=e@f", "x*", "y?", "SYSTEMTAP_RELEASE", "/tmp/x", "-x", "12", "STAP", false)
	f.Add("/bin/../bash", `x} interval:s:1 { system("id")`, "$(id)", "LD_PRELOAD", "/x.so", "-c", "id", "BPF", false)
	f.Add("/bin/bash\n", "a\nb", "`id`", "BPFTRACE_A\nB", "1\n2", "-o", "/etc/passwd", "bpf", true)
	f.Add("bin/bash", "", "a b", "", "", "-p", "1e3", "STAP", false)
	f.Add("/bin/bash", "xmalloc", "", "BPFTRACE_PERF_RB_PAGES", "131072", "", "", "BPF", false)
	f.Add("/bin/bash", "xmalloc", "", "BPFTRACE_STRLEN", "+64", "", "", "BPF", false)
	f.Add("/bin/bash", "xmalloc", "", "BPFTRACE_NO_CPP_DEMANGLE", "1", "", "", "BPF", false)
	f.Add("/bin/bash", "xmalloc", "", "BPFTRACE_LOG_SIZE", "4000000000", "", "", "BPF", false)
	f.Add("/bin/b\u0430sh", "xm\u0430lloc", "a\x00", "PATH", "/tmp", "--unsafe", "", "BPF", true)
	f.Fuzz(func(t *testing.T, process, fn1, fn2, envName, envValue, opt1, opt2, traceType string, unsafe bool) {
		info := messages.TemplateInfo{
			Process:   process,
			Functions: []string{fn1, fn2},
			TraceType: messages.TraceType(traceType),
		}
		if envName != "" || envValue != "" {
			info.Environment, info.Value = []string{envName}, []string{envValue}
		}
		if opt1 != "" || opt2 != "" {
			info.Options = []string{opt1, opt2}
		}
		rules := validate.DefaultRules()
		rules.AllowUnsafeOptions = unsafe
		tt := info.TraceType

		// Each field on its own, so that the fuzzer need not make every
		// other field valid before it can find a hole in one.
		processErr := validate.Process(process)
		if processErr == nil && !fuzzProcessOK(process) {
			t.Fatalf("Process accepted %q", process)
		}
		functionsErr := validate.Functions(tt, info.Functions)
		if functionsErr == nil && !fuzzFunctionsOK(tt, info.Functions) {
			t.Fatalf("Functions accepted %q for %q", info.Functions, tt)
		}
		envErr := validate.Environment(tt, info.Environment, info.Value, rules)
		if envErr == nil && !fuzzEnvironmentOK(tt, info.Environment, info.Value) {
			t.Fatalf("Environment accepted %q=%q for %q", info.Environment, info.Value, tt)
		}
		optionsErr := validate.Options(tt, info.Options, unsafe)
		if optionsErr == nil && !fuzzOptionsOK(tt, info.Options, unsafe) {
			t.Fatalf("Options accepted %q for %q (unsafe %v)", info.Options, tt, unsafe)
		}

		err := validate.Template(info, rules)
		typeOK := tt == messages.BPF || tt == messages.STAP
		allOK := typeOK && processErr == nil && functionsErr == nil && envErr == nil && optionsErr == nil
		if (err == nil) != allOK {
			t.Fatalf("Template() = %v, but the fields alone say ok=%v", err, allOK)
		}
		if err != nil && !strings.Contains(err.Error(), ": ") {
			t.Fatalf("error %q names no field", err)
		}
	})
}

func fuzzProcessOK(p string) bool {
	return fuzzProcessRE.MatchString(p) && len(p) <= 4096 &&
		!strings.Contains(p+"/", "/./") && !strings.Contains(p+"/", "/../")
}

func fuzzFunctionsOK(tt messages.TraceType, fs []string) bool {
	for _, fn := range fs {
		if !fuzzFunctionRE.MatchString(fn) || (tt == messages.BPF && strings.Contains(fn, "?")) {
			return false
		}
	}
	return len(fs) > 0
}

// fuzzEnvDefault restates the default table: name -> accepted values, as
// a predicate written independently of the package's parser.
var fuzzEnvDefault = map[string]func(string) bool{
	"BPFTRACE_STRLEN":             fuzzRange(1, 200, false),
	"BPFTRACE_PERF_RB_PAGES":      fuzzRange(1, 256, true),
	"BPFTRACE_MAP_KEYS_MAX":       fuzzRange(1, 16384, false),
	"BPFTRACE_NO_CPP_DEMANGLE":    fuzzBool,
	"BPFTRACE_CACHE_USER_SYMBOLS": fuzzBool,
	"BPFTRACE_NO_USER_SYMBOLS":    fuzzBool,
}

var fuzzDecimalRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,5})$`)

func fuzzRange(lo, hi int, pow2 bool) func(string) bool {
	return func(v string) bool {
		if !fuzzDecimalRE.MatchString(v) {
			return false
		}
		n, _ := strconv.Atoi(v)
		return n >= lo && n <= hi && (!pow2 || n&(n-1) == 0)
	}
}

func fuzzBool(v string) bool { return v == "0" || v == "1" }

func fuzzEnvironmentOK(tt messages.TraceType, names, values []string) bool {
	for i, name := range names {
		ok := fuzzEnvDefault[name]
		if tt != messages.BPF || ok == nil || !ok(values[i]) {
			return false
		}
	}
	return len(names) == len(values)
}

func fuzzOptionsOK(tt messages.TraceType, opts []string, unsafe bool) bool {
	for _, o := range opts {
		if strings.ContainsAny(o, "\x00\n\r") {
			return false
		}
		if !unsafe && !fuzzFlags[tt][o] && !fuzzWords[o] && !fuzzNumberRE.MatchString(o) {
			return false
		}
	}
	return true
}
