package validate_test

import (
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestOptions(t *testing.T) {
	bpf, stap := messages.BPF, messages.STAP
	many := make([]string, 65)
	for i := range many {
		many[i] = "-v"
	}
	tests := []struct {
		name                  string
		traceType             messages.TraceType
		opts                  []string
		unsafe                bool
		wantField, wantReason string
	}{
		{name: "bpf none", traceType: bpf},
		{name: "bpf verbose", traceType: bpf, opts: []string{"-v"}},
		{name: "bpf buffering none", traceType: bpf, opts: []string{"-B", "none"}},
		{name: "bpf buffering line", traceType: bpf, opts: []string{"-B", "line"}},
		{name: "bpf buffering full", traceType: bpf, opts: []string{"-B", "full"}},
		{name: "bpf json", traceType: bpf, opts: []string{"-f", "json"}},
		{name: "bpf text", traceType: bpf, opts: []string{"-f", "text"}},
		{name: "bpf helper warnings", traceType: bpf, opts: []string{"-k", "-kk"}},
		{name: "bpf quiet", traceType: bpf, opts: []string{"-q", "--no-warnings"}},
		{name: "bpf pid", traceType: bpf, opts: []string{"-p", "1"}},
		{name: "bpf largest pid", traceType: bpf, opts: []string{"-p", "4194303"}},
		{name: "bpf mixed", traceType: bpf, opts: []string{"-v", "-p", "123", "-q", "-B", "line"}},
		{name: "stap verbose", traceType: stap, opts: []string{"-v", "-vv", "-vvv"}},
		{name: "stap warnings off", traceType: stap, opts: []string{"-w", "--suppress-handler-errors"}},
		{name: "stap pid", traceType: stap, opts: []string{"-x", "42"}},
		{name: "stap buffer", traceType: stap, opts: []string{"-s", "1", "-s", "4096"}},
		{name: "unknown tracer without options", traceType: "DTRACE"},

		{name: "bpf command", traceType: bpf, opts: []string{"-c", "id"}, wantField: "options[0]",
			wantReason: `"-c" is not allowed for BPF (runs a command); set allow-unsafe-options to permit it`},
		{name: "bpf unsafe", traceType: bpf, opts: []string{"--unsafe"}, wantField: "options[0]", wantReason: "unsafe builtins"},
		{name: "bpf output file", traceType: bpf, opts: []string{"-o", "/etc/passwd"}, wantField: "options[0]", wantReason: "writes a file"},
		{name: "bpf attached output file", traceType: bpf, opts: []string{"-o/etc/passwd"}, wantField: "options[0]", wantReason: "writes a file"},
		{name: "bpf program", traceType: bpf, opts: []string{"-e", `BEGIN { system("id") }`}, wantField: "options[0]", wantReason: "replaces"},
		{name: "bpf include dir", traceType: bpf, opts: []string{"-I", "/tmp"}, wantField: "options[0]", wantReason: "loads code"},
		{name: "bpf include file", traceType: bpf, opts: []string{"--include", "x.h"}, wantField: "options[0]", wantReason: "loads code"},
		{name: "bpf include file with equals", traceType: bpf, opts: []string{"--include=x.h"}, wantField: "options[0]", wantReason: "loads code"},
		{name: "bpf dry run", traceType: bpf, opts: []string{"-d"}, wantField: "options[0]", wantReason: "does not trace"},
		{name: "bpf kkk", traceType: bpf, opts: []string{"-kkk"}, wantField: "options[0]"},
		{name: "bpf attached buffering", traceType: bpf, opts: []string{"-Bnone"}, wantField: "options[0]"},
		{name: "bpf trailing buffering", traceType: bpf, opts: []string{"-v", "-B"}, wantField: "options[1]", wantReason: "needs a buffering mode"},
		{name: "bpf bad buffering", traceType: bpf, opts: []string{"-B", "bogus"}, wantField: "options[1]", wantReason: `argument "bogus" of "-B"`},
		{name: "bpf upper-case format", traceType: bpf, opts: []string{"-f", "JSON"}, wantField: "options[1]"},
		{name: "bpf pid zero", traceType: bpf, opts: []string{"-p", "0"}, wantField: "options[1]", wantReason: "is not a PID"},
		{name: "bpf pid negative", traceType: bpf, opts: []string{"-p", "-1"}, wantField: "options[1]"},
		{name: "bpf pid exponent", traceType: bpf, opts: []string{"-p", "1e3"}, wantField: "options[1]"},
		{name: "bpf pid leading space", traceType: bpf, opts: []string{"-p", " 12"}, wantField: "options[1]"},
		{name: "bpf pid trailing space", traceType: bpf, opts: []string{"-p", "12 "}, wantField: "options[1]"},
		{name: "bpf pid injection", traceType: bpf, opts: []string{"-p", "12;id"}, wantField: "options[1]"},
		{name: "bpf pid plus", traceType: bpf, opts: []string{"-p", "+12"}, wantField: "options[1]"},
		{name: "bpf pid leading zero", traceType: bpf, opts: []string{"-p", "012"}, wantField: "options[1]"},
		{name: "bpf pid hex", traceType: bpf, opts: []string{"-p", "0x10"}, wantField: "options[1]"},
		{name: "bpf pid too large", traceType: bpf, opts: []string{"-p", "4194304"}, wantField: "options[1]"},
		{name: "bpf pid overflow", traceType: bpf, opts: []string{"-p", "99999999999999999999"}, wantField: "options[1]"},
		{name: "bpf pid empty", traceType: bpf, opts: []string{"-p", ""}, wantField: "options[1]"},
		{name: "bpf trailing pid", traceType: bpf, opts: []string{"-p"}, wantField: "options[0]", wantReason: "needs a PID"},
		{name: "bpf pid swallows no flag", traceType: bpf, opts: []string{"-p", "-c", "id"}, wantField: "options[1]"},
		{name: "bpf bad after good", traceType: bpf, opts: []string{"-p", "12", "-c", "id"}, wantField: "options[2]", wantReason: "runs a command"},
		{name: "bpf bare word", traceType: bpf, opts: []string{"id"}, wantField: "options[0]"},
		{name: "bpf semicolon", traceType: bpf, opts: []string{";id"}, wantField: "options[0]"},
		{name: "bpf substitution", traceType: bpf, opts: []string{"$(id)"}, wantField: "options[0]"},
		{name: "bpf glued injection", traceType: bpf, opts: []string{"-v;id"}, wantField: "options[0]"},
		{name: "bpf flag with value", traceType: bpf, opts: []string{"--no-warnings=1"}, wantField: "options[0]"},
		{name: "bpf end of options", traceType: bpf, opts: []string{"--"}, wantField: "options[0]"},
		{name: "bpf dash", traceType: bpf, opts: []string{"-"}, wantField: "options[0]"},
		{name: "bpf empty element", traceType: bpf, opts: []string{""}, wantField: "options[0]"},
		{name: "bpf stap option", traceType: bpf, opts: []string{"-x", "1"}, wantField: "options[0]"},
		{name: "bpf newline", traceType: bpf, opts: []string{"-v\n"}, wantField: "options[0]", wantReason: "newline"},
		{name: "bpf homoglyph dash", traceType: bpf, opts: []string{"\u2013v"}, wantField: "options[0]"},

		{name: "stap command", traceType: stap, opts: []string{"-c", "id"}, wantField: "options[0]", wantReason: "runs a command"},
		{name: "stap guru", traceType: stap, opts: []string{"-g"}, wantField: "options[0]", wantReason: "guru mode"},
		{name: "stap guru long", traceType: stap, opts: []string{"--guru-mode"}, wantField: "options[0]", wantReason: "guru mode"},
		{name: "stap kbuild options", traceType: stap, opts: []string{"-B", "CONFIG_X=y"}, wantField: "options[0]", wantReason: "compiled or loaded"},
		{name: "stap module name", traceType: stap, opts: []string{"-m", "mod"}, wantField: "options[0]", wantReason: "compiled or loaded"},
		{name: "stap release", traceType: stap, opts: []string{"-r", "/tmp"}, wantField: "options[0]", wantReason: "compiled or loaded"},
		{name: "stap define", traceType: stap, opts: []string{"-DMAXSTRINGLEN=1"}, wantField: "options[0]", wantReason: "compiled or loaded"},
		{name: "stap tapset dir", traceType: stap, opts: []string{"-I", "/tmp"}, wantField: "options[0]", wantReason: "compiled or loaded"},
		{name: "stap output", traceType: stap, opts: []string{"-o", "/etc/passwd"}, wantField: "options[0]", wantReason: "writes a file"},
		{name: "stap script", traceType: stap, opts: []string{"-e", "probe begin {}"}, wantField: "options[0]", wantReason: "replaces"},
		{name: "stap flight recorder", traceType: stap, opts: []string{"-F"}, wantField: "options[0]", wantReason: "after stap exits"},
		{name: "stap pass", traceType: stap, opts: []string{"-p", "4"}, wantField: "options[0]", wantReason: "does not trace"},
		{name: "stap vvvv", traceType: stap, opts: []string{"-vvvv"}, wantField: "options[0]"},
		{name: "stap quiet is bpftrace's", traceType: stap, opts: []string{"-q"}, wantField: "options[0]"},
		{name: "stap buffer zero", traceType: stap, opts: []string{"-s", "0"}, wantField: "options[1]", wantReason: "buffer size"},
		{name: "stap buffer too big", traceType: stap, opts: []string{"-s", "4097"}, wantField: "options[1]"},
		{name: "stap buffer fraction", traceType: stap, opts: []string{"-s", "1.5"}, wantField: "options[1]"},
		{name: "stap pid zero", traceType: stap, opts: []string{"-x", "0"}, wantField: "options[1]"},
		{name: "stap trailing pid", traceType: stap, opts: []string{"-w", "-x"}, wantField: "options[1]", wantReason: "needs a PID"},
		{name: "unknown tracer", traceType: "", opts: []string{"-v"}, wantField: "options", wantReason: "unknown tracer"},

		{name: "unsafe command", traceType: bpf, opts: []string{"-c", "id"}, unsafe: true},
		{name: "unsafe bpftrace", traceType: bpf, opts: []string{"--unsafe", "-o", "/tmp/out"}, unsafe: true},
		{name: "unsafe guru", traceType: stap, opts: []string{"-g", "-B", "X=1"}, unsafe: true},
		{name: "unsafe newline", traceType: bpf, opts: []string{"-c", "id\nrm"}, unsafe: true, wantField: "options[1]", wantReason: "newline"},
		{name: "unsafe NUL", traceType: stap, opts: []string{"\x00"}, unsafe: true, wantField: "options[0]"},
		{name: "unsafe carriage return", traceType: stap, opts: []string{"-v\r"}, unsafe: true, wantField: "options[0]"},
		{name: "unsafe long", traceType: bpf, opts: []string{strings.Repeat("x", 4097)}, unsafe: true, wantField: "options[0]", wantReason: "longer than 4096"},
		{name: "too many", traceType: bpf, opts: many, wantField: "options", wantReason: "more than 64"},
		{name: "too many unsafe", traceType: bpf, opts: many, unsafe: true, wantField: "options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, validate.Options(tt.traceType, tt.opts, tt.unsafe), tt.wantField, tt.wantReason)
		})
	}
}

func TestOptionsMessage(t *testing.T) {
	err := validate.Options(messages.BPF, []string{"-c", "id"}, false)
	want := `options[0]: "-c" is not allowed for BPF (runs a command); set allow-unsafe-options to permit it`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestNativeOptions(t *testing.T) {
	tests := []struct {
		name                  string
		opts, env             []string
		wantPID               int
		wantField, wantReason string
	}{
		{name: "none"},
		{name: "pid", opts: []string{"-p", "42"}, wantPID: 42},
		{name: "largest pid", opts: []string{"-p", "4194303"}, wantPID: 4194303},
		{name: "bpftrace option", opts: []string{"-v"}, wantField: "options[0]", wantReason: `"-v" is a bpftrace option`},
		{name: "bpftrace option after pid", opts: []string{"-p", "7", "-B", "line"}, wantField: "options[2]", wantReason: `"-B" is a bpftrace option`},
		{name: "unsafe option", opts: []string{"--unsafe"}, wantField: "options[0]", wantReason: "the native engine takes only -p PID"},
		{name: "pid missing", opts: []string{"-p"}, wantField: "options[0]", wantReason: "needs a PID"},
		{name: "pid zero", opts: []string{"-p", "0"}, wantField: "options[1]", wantReason: `argument "0" of "-p" is not a PID`},
		{name: "pid too large", opts: []string{"-p", "4194304"}, wantField: "options[1]", wantReason: "is not a PID"},
		{name: "pid twice", opts: []string{"-p", "1", "-p", "2"}, wantField: "options[2]", wantReason: "given twice"},
		{name: "environment", env: []string{"BPFTRACE_STRLEN"}, wantField: "environment[0]", wantReason: `"BPFTRACE_STRLEN" is a bpftrace variable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, err := validate.NativeOptions(tt.opts, tt.env)
			checkRefusal(t, err, tt.wantField, tt.wantReason)
			if err == nil && pid != tt.wantPID {
				t.Errorf("pid %d, want %d", pid, tt.wantPID)
			}
		})
	}
}
