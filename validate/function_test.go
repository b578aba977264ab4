package validate_test

import (
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestFunction(t *testing.T) {
	tests := []struct {
		name, function, wantReason string
		ok                         bool
	}{
		{name: "plain", function: "xmalloc", ok: true},
		{name: "underscore", function: "_start", ok: true},
		{name: "cold clone", function: "foo.cold", ok: true},
		{name: "dollar", function: "dollar$fn", ok: true},
		{name: "at", function: "memcpy@GLIBC_2.2.5", ok: true},
		{name: "star", function: "xmall*", ok: true},
		{name: "only star", function: "*", ok: true},
		{name: "question", function: "xmall?c", ok: true},
		{name: "256 bytes", function: strings.Repeat("a", 256), ok: true},

		{name: "empty", function: "", wantReason: "is empty"},
		{name: "space", function: "a b", wantReason: `"a b" has characters outside [A-Za-z0-9_.$@*?]`},
		{name: "script injection", function: `x} interval:s:1 { system("id")`, wantReason: "characters outside"},
		{name: "bpftrace quote break-out", function: `x":"y`, wantReason: "characters outside"},
		{name: "stap quote break-out", function: `x").call { system("id") } probe begin { printf("`, wantReason: "characters outside"},
		{name: "semicolon", function: "x;id", wantReason: "characters outside"},
		{name: "command substitution", function: "$(id)", wantReason: "characters outside"},
		{name: "backticks", function: "`id`", wantReason: "characters outside"},
		{name: "pipe", function: "a|b", wantReason: "characters outside"},
		{name: "and", function: "a&&b", wantReason: "characters outside"},
		{name: "newline", function: "a\nb", wantReason: "characters outside"},
		{name: "NUL", function: "a\x00b", wantReason: "characters outside"},
		{name: "single quote", function: "a'b", wantReason: "characters outside"},
		{name: "backslash", function: `a\b`, wantReason: "characters outside"},
		{name: "open brace", function: "{", wantReason: "characters outside"},
		{name: "close brace", function: "}", wantReason: "characters outside"},
		{name: "colon", function: "a:b", wantReason: "characters outside"},
		{name: "slash", function: "a/b", wantReason: "characters outside"},
		{name: "traversal", function: "../x", wantReason: "characters outside"},
		{name: "minus", function: "a-b", wantReason: "characters outside"},
		{name: "comma", function: "a,b", wantReason: "characters outside"},
		{name: "brackets", function: "a[0]", wantReason: "characters outside"},
		{name: "cyrillic a homoglyph", function: "xm\u0430lloc", wantReason: "characters outside"},
		{name: "no-break space", function: "a\u00a0b", wantReason: "characters outside"},
		{name: "too long", function: strings.Repeat("a", 257), wantReason: "longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field := "function"
			if tt.ok {
				field = ""
			}
			checkRefusal(t, validate.Function(tt.function), field, tt.wantReason)
		})
	}
}

func TestFunctions(t *testing.T) {
	many := make([]string, 257)
	for i := range many {
		many[i] = "f"
	}
	tests := []struct {
		name                  string
		traceType             messages.TraceType
		functions             []string
		wantField, wantReason string
	}{
		{name: "two", traceType: messages.BPF, functions: []string{"xmalloc", "xfree"}},
		{name: "256", traceType: messages.BPF, functions: many[:256]},
		{name: "question mark for STAP", traceType: messages.STAP, functions: []string{"xmall?c"}},
		{name: "nil", traceType: messages.BPF, functions: nil, wantField: "functions", wantReason: "is empty"},
		{name: "empty", traceType: messages.STAP, functions: []string{}, wantField: "functions", wantReason: "is empty"},
		{name: "257", traceType: messages.BPF, functions: many, wantField: "functions", wantReason: "more than 256"},
		{name: "third bad", traceType: messages.BPF, functions: []string{"a", "b", "a b"}, wantField: "functions[2]"},
		{name: "empty name", traceType: messages.STAP, functions: []string{"a", ""}, wantField: "functions[1]", wantReason: "is empty"},
		{name: "question mark for BPF", traceType: messages.BPF, functions: []string{"xmall?c"}, wantField: "functions[0]", wantReason: `"?" wildcard`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefusal(t, validate.Functions(tt.traceType, tt.functions), tt.wantField, tt.wantReason)
		})
	}
}

func TestFunctionsMessage(t *testing.T) {
	err := validate.Functions(messages.BPF, []string{"a", "b", "a b"})
	want := `functions[2]: "a b" has characters outside [A-Za-z0-9_.$@*?]`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
