package validate_test

import (
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestEnvironment(t *testing.T) {
	custom, err := validate.RulesFrom([]string{"LD_PRELOAD=any", "MY_*=int:0..9", "BPFTRACE_STRLEN=deny", "MODE=enum:fast|slow"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, 65)
	ones := make([]string, 65)
	for i := range many {
		many[i], ones[i] = "BPFTRACE_STRLEN", "1"
	}
	bpf := func(name, value string) ([]string, []string) { return []string{name}, []string{value} }
	type tc struct {
		name                  string
		traceType             messages.TraceType
		names, values         []string
		rules                 *validate.Rules
		wantField, wantReason string
	}
	tests := []tc{
		{name: "none", traceType: messages.BPF},
		{name: "empty lists", traceType: messages.STAP, names: []string{}, values: []string{}},
		{name: "64 variables", traceType: messages.BPF, names: many[:64], values: ones[:64]},
		{name: "configured any", traceType: messages.BPF, names: []string{"LD_PRELOAD"}, values: []string{"/x.so"}, rules: &custom},
		{name: "configured pattern", traceType: messages.BPF, names: []string{"MY_VAR"}, values: []string{"9"}, rules: &custom},
		{name: "configured pattern out of range", traceType: messages.BPF, names: []string{"MY_VAR"}, values: []string{"10"}, rules: &custom,
			wantField: "value[0]", wantReason: "from 0 to 9"},
		{name: "configured enum", traceType: messages.BPF, names: []string{"MODE"}, values: []string{"slow"}, rules: &custom},
		{name: "configured enum case variant", traceType: messages.BPF, names: []string{"MODE"}, values: []string{"Slow"}, rules: &custom,
			wantField: "value[0]", wantReason: "want one of fast, slow"},
		{name: "denied default", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN"}, values: []string{"1"}, rules: &custom,
			wantField: "environment[0]", wantReason: "not allowed for BPF"},
		{name: "more names", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN", "BPFTRACE_STRLEN"}, values: []string{"1"},
			wantField: "environment", wantReason: "2 names but value has 1"},
		{name: "more values", traceType: messages.BPF, names: nil, values: []string{"1"}, wantField: "environment"},
		{name: "65 variables", traceType: messages.BPF, names: many, values: ones, wantField: "environment", wantReason: "more than 64"},
		{name: "no STAP variable by default", traceType: messages.STAP, names: []string{"SYSTEMTAP_COLORS"}, values: []string{"error=01"},
			wantField: "environment[0]", wantReason: "no variables are allowed"},
		{name: "bpftrace variable for STAP", traceType: messages.STAP, names: []string{"BPFTRACE_STRLEN"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "unknown tracer", traceType: "DTRACE", names: []string{"BPFTRACE_STRLEN"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "space in name", traceType: messages.BPF, names: []string{"BPFTRACE_A B"}, values: []string{"1"},
			wantField: "environment[0]", wantReason: "not a variable name"},
		{name: "equals in name", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN=1"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "newline in name", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN\nLD_PRELOAD"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "NUL in name", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN\x00"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "lower-case name", traceType: messages.BPF, names: []string{"bpftrace_strlen"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "empty name", traceType: messages.BPF, names: []string{""}, values: []string{"1"}, wantField: "environment[0]", wantReason: "is empty"},
		{name: "homoglyph name", traceType: messages.BPF, names: []string{"BPFTRACE_STRLE\u041d"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "long name", traceType: messages.BPF, names: []string{"BPFTRACE_" + strings.Repeat("A", 250)}, values: []string{"1"},
			wantField: "environment[0]", wantReason: "longer than 256 bytes"},
		{name: "long value", traceType: messages.BPF, names: []string{"LD_PRELOAD"}, values: []string{strings.Repeat("v", 4097)}, rules: &custom,
			wantField: "value[0]", wantReason: "longer than 4096 bytes"},
		{name: "newline in any value", traceType: messages.BPF, names: []string{"LD_PRELOAD"}, values: []string{"1\nX=1"}, rules: &custom,
			wantField: "value[0]", wantReason: "NUL, newline or carriage return"},
		{name: "second value refused", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN", "BPFTRACE_PERF_RB_PAGES"}, values: []string{"64", "100"},
			wantField: "value[1]", wantReason: "want a power of two from 1 to 256"},
	}
	// Every default entry, and hostile values for each.
	good := map[string][]string{
		"BPFTRACE_STRLEN":             {"1", "64", "200"},
		"BPFTRACE_PERF_RB_PAGES":      {"1", "2", "64", "256"},
		"BPFTRACE_MAP_KEYS_MAX":       {"1", "4096", "16384"},
		"BPFTRACE_NO_CPP_DEMANGLE":    {"0", "1"},
		"BPFTRACE_CACHE_USER_SYMBOLS": {"0", "1"},
		"BPFTRACE_NO_USER_SYMBOLS":    {"0", "1"},
	}
	bad := map[string][]string{
		"BPFTRACE_STRLEN":             {"0", "201", "+5", " 5", "5 ", "0x10", "05", "1e2", "-1", "", "99999999999999999999", "5\n", "5\x00"},
		"BPFTRACE_PERF_RB_PAGES":      {"0", "3", "100", "512", "131072", "+64", "0x40", "064", "64 "},
		"BPFTRACE_MAP_KEYS_MAX":       {"0", "16385", "4000000000", "abc"},
		"BPFTRACE_NO_CPP_DEMANGLE":    {"true", "yes", "2", "", " 1", "01"},
		"BPFTRACE_CACHE_USER_SYMBOLS": {"TRUE", "on"},
		"BPFTRACE_NO_USER_SYMBOLS":    {"-0"},
	}
	for name, values := range good {
		for _, v := range values {
			n, vs := bpf(name, v)
			tests = append(tests, tc{name: "default " + name + "=" + v, traceType: messages.BPF, names: n, values: vs})
		}
	}
	for name, values := range bad {
		for _, v := range values {
			n, vs := bpf(name, v)
			tests = append(tests, tc{name: "hostile " + name + "=" + v, traceType: messages.BPF, names: n, values: vs, wantField: "value[0]"})
		}
	}
	// The variables of the security report and other dangerous names are
	// not allowed at all by default, whatever the value.
	for _, e := range []struct {
		tt          messages.TraceType
		name, value string
	}{
		{messages.STAP, "SYSTEMTAP_RELEASE", "/tmp/x"},
		{messages.STAP, "SYSTEMTAP_STAPRUN", "/tmp/x/staprun"},
		{messages.STAP, "SYSTEMTAP_RUNTIME", "/tmp/x"},
		{messages.STAP, "SYSTEMTAP_TAPSET", "/tmp/x"},
		{messages.STAP, "SYSTEMTAP_DIR", "/tmp/x"},
		{messages.STAP, "SYSTEMTAP_DEBUGINFO_PATH", "/tmp/x"},
		{messages.STAP, "SYSTEMTAP_SIGN", "1"},
		{messages.STAP, "LD_PRELOAD", "/tmp/x.so"},
		{messages.STAP, "PATH", "/tmp"},
		{messages.BPF, "BPFTRACE_LOG_SIZE", "4000000000"},
		{messages.BPF, "BPFTRACE_BTF", "/etc/shadow"},
		{messages.BPF, "BPFTRACE_VMLINUX", "/etc/shadow"},
		{messages.BPF, "BPFTRACE_KERNEL_SOURCE", "/tmp/x"},
		{messages.BPF, "BPFTRACE_KERNEL_BUILD", "/tmp/x"},
		{messages.BPF, "BPFTRACE_MAX_PROBES", "5000"},
		{messages.BPF, "BPFTRACE_MAX_BPF_PROGS", "5000"},
		{messages.BPF, "BPFTRACE_CAT_BYTES_MAX", "4000000000"},
		{messages.BPF, "LD_PRELOAD", "/tmp/x.so"},
		{messages.BPF, "LD_LIBRARY_PATH", "/tmp"},
		{messages.BPF, "PATH", "/tmp"},
		{messages.BPF, "SYSTEMTAP_RELEASE", "/tmp/x"},
	} {
		tests = append(tests, tc{name: "refused " + string(e.tt) + " " + e.name, traceType: e.tt, names: []string{e.name}, values: []string{e.value},
			wantField: "environment[0]", wantReason: "is not allowed for " + string(e.tt)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := validate.DefaultRules()
			if tt.rules != nil {
				rules = *tt.rules
			}
			checkRefusal(t, validate.Environment(tt.traceType, tt.names, tt.values, rules), tt.wantField, tt.wantReason)
		})
	}
}

func TestEnvironmentReasonNamesKind(t *testing.T) {
	err := validate.Environment(messages.BPF, []string{"BPFTRACE_STRLEN"}, []string{"1000"}, validate.DefaultRules())
	checkRefusal(t, err, "value[0]", `"1000" is not a valid value of BPFTRACE_STRLEN: want a decimal integer from 1 to 200`)
	err = validate.Environment(messages.BPF, []string{"PATH"}, []string{"/tmp"}, validate.DefaultRules())
	checkRefusal(t, err, "environment[0]", "allowed: BPFTRACE_CACHE_USER_SYMBOLS (bool), BPFTRACE_MAP_KEYS_MAX (int:1..16384), "+
		"BPFTRACE_NO_CPP_DEMANGLE (bool), BPFTRACE_NO_USER_SYMBOLS (bool), BPFTRACE_PERF_RB_PAGES (pow2:1..256), BPFTRACE_STRLEN (int:1..200)")
}

func TestParseEnvEntry(t *testing.T) {
	tests := []struct {
		entry, want, wantErr string
	}{
		{entry: "A=int:1..200", want: "int:1..200"},
		{entry: "A=pow2:1..256", want: "pow2:1..256"},
		{entry: "A=pow2:3..5", want: "pow2:3..5"},
		{entry: "A=bool", want: "bool"},
		{entry: "A=enum:a|b|c", want: "enum:a|b|c"},
		{entry: "A=any", want: "any"},
		{entry: "BPFTRACE_*=any", want: "any"},
		{entry: "A=deny", want: "deny"},
		{entry: "A", wantErr: `entry "A": want NAME=KIND`},
		{entry: "=bool", wantErr: "the name may hold only"},
		{entry: "A B=bool", wantErr: "the name may hold only"},
		{entry: "A=", wantErr: "missing kind"},
		{entry: "A=string", wantErr: `unknown kind "string"`},
		{entry: "A=int", wantErr: "needs decimal bounds"},
		{entry: "A=int:1-2", wantErr: "needs decimal bounds"},
		{entry: "A=int:-1..2", wantErr: "needs decimal bounds"},
		{entry: "A=int:5..1", wantErr: "lower bound is above"},
		{entry: "A=pow2:5..7", wantErr: "hold no power of two"},
		{entry: "A=pow2:0..0", wantErr: "hold no power of two"},
		{entry: "A=bool:x", wantErr: "takes no argument"},
		{entry: "A=enum:", wantErr: "needs words"},
		{entry: "A=enum:a||b", wantErr: "needs words"},
		{entry: "A=enum:a b", wantErr: "may not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, k, err := validate.ParseEnvEntry(tt.entry)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEnvEntry(%q) error = %v, want %q", tt.entry, err, tt.wantErr)
				}
				return
			}
			if err != nil || k.String() != tt.want {
				t.Fatalf("ParseEnvEntry(%q) = %v, %v; want %s", tt.entry, k, err, tt.want)
			}
		})
	}
}

func TestEnvironmentNilRulesAllowNothing(t *testing.T) {
	err := validate.Environment(messages.BPF, []string{"BPFTRACE_STRLEN"}, []string{"1"}, validate.Rules{})
	checkRefusal(t, err, "environment[0]", "no variables are allowed")
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name    string
		rules   validate.Rules
		wantErr bool
	}{
		{name: "default", rules: validate.DefaultRules()},
		{name: "zero", rules: validate.Rules{}},
		{name: "bad pattern", rules: validate.Rules{EnvAllow: map[messages.TraceType]validate.EnvTable{messages.BPF: {"BPF[": {Kind: validate.KindAny}}}}, wantErr: true},
		{name: "empty name", rules: validate.Rules{EnvAllow: map[messages.TraceType]validate.EnvTable{messages.STAP: {"": {Kind: validate.KindAny}}}}, wantErr: true},
		{name: "bad kind", rules: validate.Rules{EnvAllow: map[messages.TraceType]validate.EnvTable{messages.STAP: {"A": {Kind: "string"}}}}, wantErr: true},
		{name: "bad bounds", rules: validate.Rules{EnvAllow: map[messages.TraceType]validate.EnvTable{messages.STAP: {"A": {Kind: validate.KindInt, Min: 5, Max: 1}}}}, wantErr: true},
		{name: "unknown tracer", rules: validate.Rules{EnvAllow: map[messages.TraceType]validate.EnvTable{"bpf": {"X": {Kind: validate.KindAny}}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultRulesAreFresh(t *testing.T) {
	a := validate.DefaultRules()
	a.EnvAllow[messages.BPF]["*"] = validate.EnvKind{Kind: validate.KindAny}
	b := validate.DefaultRules()
	if got := b.EnvAllow[messages.BPF]; len(got) != 6 || got["BPFTRACE_STRLEN"].String() != "int:1..200" {
		t.Errorf("DefaultRules().EnvAllow[BPF] = %q after changing an earlier copy", got)
	}
	if b.AllowUnsafeOptions {
		t.Error("DefaultRules().AllowUnsafeOptions is true")
	}
}
