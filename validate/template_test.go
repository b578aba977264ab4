package validate_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// goodTemplate returns a template every rule accepts.
func goodTemplate() messages.TemplateInfo {
	return messages.TemplateInfo{
		Process:     "/bin/bash",
		Functions:   []string{"xmalloc", "xfree"},
		Environment: []string{"BPFTRACE_STRLEN"},
		Value:       []string{"128"},
		Options:     []string{"-B", "line", "-q"},
		TraceType:   messages.BPF,
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name       string
		change     func(*messages.TemplateInfo)
		rules      func(*validate.Rules)
		wantFields []string
	}{
		{name: "good", change: func(*messages.TemplateInfo) {}},
		{name: "good STAP", change: func(i *messages.TemplateInfo) {
			i.TraceType = messages.STAP
			i.Environment, i.Value = nil, nil
			i.Options = []string{"-v", "-x", "12"}
			i.Functions = []string{"xmall?c", "main@shell.c"}
		}},
		{name: "nil lists", change: func(i *messages.TemplateInfo) { i.Environment, i.Value, i.Options = nil, nil, nil }},
		{name: "lower-case type", change: func(i *messages.TemplateInfo) { i.TraceType = "bpf" }, wantFields: []string{"traceType"}},
		{name: "empty type", change: func(i *messages.TemplateInfo) { i.TraceType = "" }, wantFields: []string{"traceType"}},
		{name: "relative process", change: func(i *messages.TemplateInfo) { i.Process = "bash" }, wantFields: []string{"process"}},
		{name: "injected function", change: func(i *messages.TemplateInfo) {
			i.Functions = []string{"xmalloc", `x} interval:s:1 { system("id")`}
		}, wantFields: []string{"functions[1]"}},
		{name: "no functions", change: func(i *messages.TemplateInfo) { i.Functions = nil }, wantFields: []string{"functions"}},
		{name: "LD_PRELOAD", change: func(i *messages.TemplateInfo) { i.Environment = []string{"LD_PRELOAD"} }, wantFields: []string{"environment[0]"}},
		{name: "SYSTEMTAP_DIR for STAP", change: func(i *messages.TemplateInfo) {
			i.TraceType, i.Options = messages.STAP, nil
			i.Environment, i.Value = []string{"SYSTEMTAP_DIR"}, []string{"/tmp/s"}
		}, wantFields: []string{"environment[0]"}},
		{name: "LD_PRELOAD allowed by the operator", change: func(i *messages.TemplateInfo) { i.Environment = []string{"LD_PRELOAD"} },
			rules: func(r *validate.Rules) { r.EnvAllow[messages.BPF]["LD_*"] = validate.EnvKind{Kind: validate.KindAny} }},
		{name: "unsafe option", change: func(i *messages.TemplateInfo) { i.Options = []string{"--unsafe"} }, wantFields: []string{"options[0]"}},
		{name: "unsafe option allowed", change: func(i *messages.TemplateInfo) { i.Options = []string{"--unsafe"} },
			rules: func(r *validate.Rules) { r.AllowUnsafeOptions = true }},
		{name: "everything wrong", change: func(i *messages.TemplateInfo) {
			*i = messages.TemplateInfo{Process: "/bin/../bash", Functions: []string{"a;b"}, Environment: []string{"PATH"},
				Value: []string{"/"}, Options: []string{"-c", "id"}, TraceType: "DTRACE"}
		}, wantFields: []string{"traceType", "process", "functions[0]", "environment[0]", "options"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := goodTemplate()
			tt.change(&info)
			rules := validate.DefaultRules()
			if tt.rules != nil {
				tt.rules(&rules)
			}
			err := validate.Template(info, rules)
			if len(tt.wantFields) == 0 {
				if err != nil {
					t.Fatalf("Template() = %v, want nil", err)
				}
				return
			}
			if len(tt.wantFields) == 1 {
				checkRefusal(t, err, tt.wantFields[0], "")
				return
			}
			if !errors.Is(err, validate.ErrInvalid) {
				t.Fatalf("Template() = %v, want ErrInvalid", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantFields) {
				t.Fatalf("Template() reported %d errors, want %d: %v", len(lines), len(tt.wantFields), err)
			}
			for i, f := range tt.wantFields {
				if !strings.HasPrefix(lines[i], f+": ") {
					t.Errorf("error %d = %q, want field %s", i, lines[i], f)
				}
			}
		})
	}
}

func TestTraceType(t *testing.T) {
	tests := []struct {
		in   string
		want messages.TraceType
	}{
		{"BPF", messages.BPF}, {"bpf", messages.BPF}, {"Bpf", messages.BPF},
		{"STAP", messages.STAP}, {"stap", messages.STAP}, {"sTaP", messages.STAP},
		{"", ""}, {" bpf", ""}, {"bpf ", ""}, {"bp f", ""}, {"BPF\x00", ""}, {"ebpf", ""}, {"dtrace", ""},
		{"\u017ftap", ""}, // long s upper-cases to S in Unicode
		{"BP\u0191", ""},
	}
	for _, tt := range tests {
		got, err := validate.TraceType(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("TraceType(%q) = %q, want an error", tt.in, got)
				continue
			}
			checkRefusal(t, err, "traceType", "")
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("TraceType(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestLasting(t *testing.T) {
	tests := []struct {
		seconds int64
		max     time.Duration
		ok      bool
	}{
		{1, 0, true},
		{86400, 0, true},
		{86401, 0, false},
		{0, 0, false},
		{-1, 0, false},
		{math.MinInt64, 0, false},
		{math.MaxInt64, 0, false},
		{3600, time.Hour, true},
		{3601, time.Hour, false},
		{7776000, 90 * 24 * time.Hour, true},
		{1, time.Millisecond, false},
	}
	for _, tt := range tests {
		err := validate.Lasting(tt.seconds, tt.max)
		field := "lasting"
		if tt.ok {
			field = ""
		}
		t.Run("", func(t *testing.T) { checkRefusal(t, err, field, "") })
	}
	checkRefusal(t, validate.Lasting(86401, 0), "lasting", "86401 is outside 1..86400 seconds")
}
