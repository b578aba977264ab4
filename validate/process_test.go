package validate_test

import (
	"strings"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestProcess(t *testing.T) {
	longest := strings.Repeat("/"+strings.Repeat("a", 255), 16) // 4096 bytes
	tests := []struct {
		name, process, wantReason string
		ok                        bool
	}{
		{name: "bash", process: "/bin/bash", ok: true},
		{name: "library", process: "/usr/lib/x86_64-linux-gnu/libc.so.6", ok: true},
		{name: "every allowed character", process: "/opt/a+b,c~d=e@f/bin-1_2.x", ok: true},
		{name: "root", process: "/", ok: true},
		{name: "4096 bytes", process: longest, ok: true},

		{name: "empty", process: "", wantReason: "is empty"},
		{name: "relative", process: "bin/bash", wantReason: "not an absolute path"},
		{name: "dot relative", process: "./bash", wantReason: "not an absolute path"},
		{name: "home tilde", process: "~/bash", wantReason: "not an absolute path"},
		{name: "traversal", process: "/bin/../etc/passwd", wantReason: "not a clean path"},
		{name: "trailing traversal", process: "/usr/bin/..", wantReason: "not a clean path"},
		{name: "dot component", process: "/bin/./bash", wantReason: "not a clean path"},
		{name: "double slash", process: "//bin/bash", wantReason: "not a clean path"},
		{name: "trailing slash", process: "/bin/bash/", wantReason: "not a clean path"},
		{name: "space", process: "/bin/ba sh", wantReason: "characters outside"},
		{name: "tab", process: "/bin/ba\tsh", wantReason: "characters outside"},
		{name: "newline", process: "/bin/bash\nuretprobe:/bin/sh:x", wantReason: "characters outside"},
		{name: "carriage return", process: "/bin/bash\r", wantReason: "characters outside"},
		{name: "NUL", process: "/bin/bash\x00", wantReason: "characters outside"},
		{name: "semicolon", process: "/bin/bash;id", wantReason: "characters outside"},
		{name: "command substitution", process: "/bin/$(id)", wantReason: "characters outside"},
		{name: "backticks", process: "/bin/`id`", wantReason: "characters outside"},
		{name: "pipe", process: "/bin/bash|id", wantReason: "characters outside"},
		{name: "and", process: "/bin/bash&&id", wantReason: "characters outside"},
		{name: "double quote", process: `/bin/bash"):function("x`, wantReason: "characters outside"},
		{name: "single quote", process: "/bin/'bash'", wantReason: "characters outside"},
		{name: "backslash", process: `/bin\bash`, wantReason: "characters outside"},
		{name: "braces", process: "/bin/bash{ system(\"id\") }", wantReason: "characters outside"},
		{name: "colon", process: "/bin/bash:xmalloc", wantReason: "characters outside"},
		{name: "dollar", process: "/bin/$HOME", wantReason: "characters outside"},
		{name: "star", process: "/bin/*", wantReason: "characters outside"},
		{name: "question mark", process: "/bin/ba?h", wantReason: "characters outside"},
		{name: "hash", process: "/bin/bash#x", wantReason: "characters outside"},
		{name: "percent", process: "/bin/bash%s", wantReason: "characters outside"},
		{name: "cyrillic a homoglyph", process: "/bin/b\u0430sh", wantReason: "characters outside"},
		{name: "zero-width space", process: "/bin/bash\u200b", wantReason: "characters outside"},
		{name: "fullwidth solidus", process: "/bin\uff0fbash", wantReason: "characters outside"},
		{name: "invalid UTF-8", process: "/bin/\xffbash", wantReason: "characters outside"},
		{name: "too long", process: longest + "a", wantReason: "longer than 4096 bytes"},
		{name: "long component", process: "/" + strings.Repeat("a", 256), wantReason: "longer than 255 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field := "process"
			if tt.ok {
				field = ""
			}
			checkRefusal(t, validate.Process(tt.process), field, tt.wantReason)
		})
	}
}

func TestProcessMessageIsShortAndEscaped(t *testing.T) {
	err := validate.Process("/" + strings.Repeat("\n", 10000))
	if err == nil {
		t.Fatal("got nil, want a refusal")
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Errorf("message is %d bytes, want a short one: %q", len(msg), msg)
	}
	if strings.ContainsAny(msg, "\n\x00") {
		t.Errorf("message repeats raw control characters: %q", msg)
	}
}
