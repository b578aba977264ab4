package validate_test

import (
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestEnvironment(t *testing.T) {
	custom := validate.Rules{EnvAllow: map[messages.TraceType][]string{
		messages.BPF: {"LD_PRELOAD", "MY_*"},
	}}
	many := make([]string, 65)
	for i := range many {
		many[i] = "BPFTRACE_X"
	}
	tests := []struct {
		name                  string
		traceType             messages.TraceType
		names, values         []string
		rules                 validate.Rules
		wantField, wantReason string
	}{
		{name: "none", traceType: messages.BPF},
		{name: "empty lists", traceType: messages.STAP, names: []string{}, values: []string{}},
		{name: "bpftrace variable", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN"}, values: []string{"128"}},
		{name: "systemtap variable", traceType: messages.STAP, names: []string{"SYSTEMTAP_DIR"}, values: []string{"/tmp/stap"}},
		{name: "value with spaces and quotes", traceType: messages.BPF, names: []string{"BPFTRACE_X"}, values: []string{`a b "c" $(id)`}},
		{name: "empty value", traceType: messages.BPF, names: []string{"BPFTRACE_X"}, values: []string{""}},
		{name: "64 variables", traceType: messages.BPF, names: many[:64], values: many[:64]},
		{name: "configured exact name", traceType: messages.BPF, names: []string{"LD_PRELOAD"}, values: []string{"/x.so"}, rules: custom},
		{name: "configured glob", traceType: messages.BPF, names: []string{"MY_VAR"}, values: []string{"1"}, rules: custom},

		{name: "more names", traceType: messages.BPF, names: []string{"BPFTRACE_A", "BPFTRACE_B"}, values: []string{"1"},
			wantField: "environment", wantReason: "2 names but value has 1"},
		{name: "more values", traceType: messages.BPF, names: nil, values: []string{"1"}, wantField: "environment"},
		{name: "65 variables", traceType: messages.BPF, names: many, values: many, wantField: "environment", wantReason: "more than 64"},
		{name: "LD_PRELOAD by default", traceType: messages.BPF, names: []string{"LD_PRELOAD"}, values: []string{"/tmp/x.so"},
			wantField: "environment[0]", wantReason: `"LD_PRELOAD" is not allowed for BPF (allowed: BPFTRACE_*)`},
		{name: "PATH by default", traceType: messages.STAP, names: []string{"SYSTEMTAP_A", "PATH"}, values: []string{"1", "/tmp"},
			wantField: "environment[1]", wantReason: "allowed: SYSTEMTAP_*"},
		{name: "bpftrace variable for STAP", traceType: messages.STAP, names: []string{"BPFTRACE_STRLEN"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "systemtap variable for BPF", traceType: messages.BPF, names: []string{"SYSTEMTAP_DIR"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "default name once configured otherwise", traceType: messages.BPF, names: []string{"BPFTRACE_STRLEN"}, values: []string{"1"},
			rules: custom, wantField: "environment[0]", wantReason: "allowed: LD_PRELOAD, MY_*"},
		{name: "no patterns for the tracer", traceType: messages.STAP, names: []string{"SYSTEMTAP_DIR"}, values: []string{"1"},
			rules: custom, wantField: "environment[0]", wantReason: "no variables are allowed"},
		{name: "unknown tracer", traceType: "DTRACE", names: []string{"BPFTRACE_X"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "space in name", traceType: messages.BPF, names: []string{"BPFTRACE_A B"}, values: []string{"1"},
			wantField: "environment[0]", wantReason: "not a variable name"},
		{name: "equals in name", traceType: messages.BPF, names: []string{"BPFTRACE_A=1"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "substitution in name", traceType: messages.BPF, names: []string{"BPFTRACE_$(id)"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "newline in name", traceType: messages.BPF, names: []string{"BPFTRACE_A\nLD_PRELOAD"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "NUL in name", traceType: messages.BPF, names: []string{"BPFTRACE_A\x00"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "leading digit", traceType: messages.BPF, names: []string{"1BPFTRACE"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "empty name", traceType: messages.BPF, names: []string{""}, values: []string{"1"}, wantField: "environment[0]", wantReason: "is empty"},
		{name: "homoglyph name", traceType: messages.BPF, names: []string{"BPFTRACE_\u0410"}, values: []string{"1"}, wantField: "environment[0]"},
		{name: "long name", traceType: messages.BPF, names: []string{"BPFTRACE_" + strings.Repeat("A", 250)}, values: []string{"1"},
			wantField: "environment[0]", wantReason: "longer than 256 bytes"},
		{name: "newline in value", traceType: messages.BPF, names: []string{"BPFTRACE_A"}, values: []string{"1\nLD_PRELOAD=/x.so"},
			wantField: "value[0]", wantReason: "NUL, newline or carriage return"},
		{name: "carriage return in value", traceType: messages.BPF, names: []string{"BPFTRACE_A"}, values: []string{"1\r"}, wantField: "value[0]"},
		{name: "NUL in value", traceType: messages.STAP, names: []string{"SYSTEMTAP_A", "SYSTEMTAP_B"}, values: []string{"1", "a\x00b"}, wantField: "value[1]"},
		{name: "long value", traceType: messages.BPF, names: []string{"BPFTRACE_A"}, values: []string{strings.Repeat("v", 4097)},
			wantField: "value[0]", wantReason: "longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := tt.rules
			if rules.EnvAllow == nil {
				rules = validate.DefaultRules()
			}
			checkRefusal(t, validate.Environment(tt.traceType, tt.names, tt.values, rules), tt.wantField, tt.wantReason)
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
		{name: "bad pattern", rules: validate.Rules{EnvAllow: map[messages.TraceType][]string{messages.BPF: {"BPF["}}}, wantErr: true},
		{name: "empty pattern", rules: validate.Rules{EnvAllow: map[messages.TraceType][]string{messages.STAP: {""}}}, wantErr: true},
		{name: "unknown tracer", rules: validate.Rules{EnvAllow: map[messages.TraceType][]string{"bpf": {"X"}}}, wantErr: true},
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
	a.EnvAllow[messages.BPF] = append(a.EnvAllow[messages.BPF], "*")
	b := validate.DefaultRules()
	if got := b.EnvAllow[messages.BPF]; len(got) != 1 || got[0] != "BPFTRACE_*" {
		t.Errorf("DefaultRules().EnvAllow[BPF] = %q after changing an earlier copy", got)
	}
	if b.AllowUnsafeOptions {
		t.Error("DefaultRules().AllowUnsafeOptions is true")
	}
}
