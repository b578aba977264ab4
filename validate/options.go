package validate

import (
	"strconv"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Limits on the options list.
const (
	maxOptions   = 64
	maxOptionLen = 4096
	maxPID       = 1<<22 - 1 // the kernel's PID_MAX_LIMIT is 1<<22
	maxStapMB    = 4096
)

// optionArg describes the argument an allowed option takes from the next
// element: what to call it in messages and how to check it.
type optionArg struct {
	name  string
	check func(string) bool
}

// Options checks the extra command-line elements for tracer t against the
// per-tracer allow-list documented in the package comment; with allowUnsafe
// any element of at most 4096 bytes without NUL, newline or carriage return
// is accepted. A refusal is a *FieldError for "options" or "options[i]".
func Options(t messages.TraceType, opts []string, allowUnsafe bool) error {
	if len(opts) > maxOptions {
		return &FieldError{Field: "options", Reason: "has " + strconv.Itoa(len(opts)) + " elements, more than 64"}
	}
	for i, o := range opts {
		switch {
		case len(o) > maxOptionLen:
			return &FieldError{Field: indexed("options", i), Reason: quote(o) + " is longer than 4096 bytes"}
		case strings.ContainsAny(o, "\x00\n\r"):
			return &FieldError{Field: indexed("options", i), Reason: quote(o) + " contains a NUL, newline or carriage return"}
		}
	}
	if allowUnsafe || len(opts) == 0 {
		return nil
	}
	var lookup func(string) (*optionArg, bool)
	switch t {
	case messages.BPF:
		lookup = bpfOption
	case messages.STAP:
		lookup = stapOption
	default:
		return &FieldError{Field: "options", Reason: "cannot be checked for unknown tracer type " + quote(string(t))}
	}
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		arg, ok := lookup(o)
		if !ok {
			return &FieldError{Field: indexed("options", i), Reason: quote(o) + " is not allowed for " + string(t) +
				refusalNote(t, o) + "; set allow-unsafe-options to permit it"}
		}
		if arg == nil {
			continue
		}
		if i+1 == len(opts) {
			return &FieldError{Field: indexed("options", i), Reason: quote(o) + " needs " + arg.name + " as the next element"}
		}
		i++
		if !arg.check(opts[i]) {
			return &FieldError{Field: indexed("options", i), Reason: "argument " + quote(opts[i]) + " of " + quote(o) + " is not " + arg.name}
		}
	}
	return nil
}

// bpfOption reports whether o is an allowed bpftrace option and which
// argument it takes (nil for none).
func bpfOption(o string) (*optionArg, bool) {
	switch o {
	case "-v", "-k", "-kk", "--no-warnings", "-q":
		return nil, true
	case "-B":
		return &optionArg{name: "a buffering mode (none, line or full)", check: oneOf("none", "line", "full")}, true
	case "-f":
		return &optionArg{name: "an output format (text or json)", check: oneOf("text", "json")}, true
	case "-p":
		return &optionArg{name: "a PID (1..4194303)", check: decimalIn(1, maxPID)}, true
	}
	return nil, false
}

// stapOption reports whether o is an allowed stap option and which argument
// it takes (nil for none).
func stapOption(o string) (*optionArg, bool) {
	switch o {
	case "-v", "-vv", "-vvv", "-w", "--suppress-handler-errors":
		return nil, true
	case "-x":
		return &optionArg{name: "a PID (1..4194303)", check: decimalIn(1, maxPID)}, true
	case "-s":
		return &optionArg{name: "a buffer size in MB (1..4096)", check: decimalIn(1, maxStapMB)}, true
	}
	return nil, false
}

// oneOf accepts exactly one of words.
func oneOf(words ...string) func(string) bool {
	return func(s string) bool {
		for _, w := range words {
			if s == w {
				return true
			}
		}
		return false
	}
}

// decimalIn accepts a plain decimal integer (no sign, spaces or leading
// zeros) from lo to hi.
func decimalIn(lo, hi int) func(string) bool {
	return func(s string) bool {
		if s == "" || len(s) > 10 || s[0] == '0' {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		n, err := strconv.Atoi(s)
		return err == nil && lo <= n && n <= hi
	}
}

// refusalNote explains, for the well-known dangerous options, why o is
// refused: " (runs a command)". It returns "" for anything else.
func refusalNote(t messages.TraceType, o string) string {
	key := o
	switch {
	case strings.HasPrefix(o, "--"):
		key, _, _ = strings.Cut(o, "=")
	case len(o) > 2 && o[0] == '-':
		key = o[:2] // "-o/etc/passwd" is "-o" with its argument attached
	}
	var why string
	if t == messages.BPF {
		why = bpfRefusal(key)
	} else {
		why = stapRefusal(key)
	}
	if why == "" {
		return ""
	}
	return " (" + why + ")"
}

// bpfRefusal says why a bpftrace option is refused.
func bpfRefusal(key string) string {
	switch key {
	case "-c":
		return "runs a command"
	case "--unsafe":
		return "allows unsafe builtins such as system()"
	case "-o", "--emit-elf", "--emit-llvm":
		return "writes a file"
	case "-e":
		return "replaces the generated program"
	case "-I", "--include":
		return "loads code from a file"
	case "-d", "-l", "-h", "--help", "-V", "--version", "--info":
		return "does not trace"
	}
	return ""
}

// stapRefusal says why a stap option is refused.
func stapRefusal(key string) string {
	switch key {
	case "-c":
		return "runs a command"
	case "-g", "--guru-mode", "--guru":
		return "enables guru mode (embedded C)"
	case "-o", "-S":
		return "writes a file"
	case "-e":
		return "replaces the generated script"
	case "-I", "-R", "-r", "-B", "-D", "-m", "--runtime":
		return "changes what is compiled or loaded into the kernel"
	case "-F":
		return "leaves the probes running after stap exits"
	case "-p", "-l", "-L", "-h", "--help", "-V", "--version":
		return "does not trace"
	case "--remote", "--use-server":
		return "runs or compiles on another host"
	}
	return ""
}

// NativeOptions checks a BPF template's options and environment for the
// native engine (package tracer/native), which runs no bpftrace: "-p PID"
// becomes its in-kernel pid filter and is returned (0 without it); every
// other option, and every environment variable, only means something to
// bpftrace and is refused with a *FieldError naming it ("options[i]",
// "environment[i]"). The options are checked here whatever
// allow-unsafe-options says.
func NativeOptions(opts, env []string) (pid int, err error) {
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		if o != "-p" {
			return 0, &FieldError{Field: indexed("options", i), Reason: quote(o) +
				" is a bpftrace option; the native engine takes only -p PID (run the template with engine bpftrace to use it)"}
		}
		if i+1 == len(opts) {
			return 0, &FieldError{Field: indexed("options", i), Reason: `"-p" needs a PID (1..4194303) as the next element`}
		}
		i++
		if !decimalIn(1, maxPID)(opts[i]) {
			return 0, &FieldError{Field: indexed("options", i), Reason: "argument " + quote(opts[i]) + ` of "-p" is not a PID (1..4194303)`}
		}
		if pid != 0 {
			return 0, &FieldError{Field: indexed("options", i-1), Reason: `"-p" is given twice; the native engine filters on one PID`}
		}
		pid, _ = strconv.Atoi(opts[i])
	}
	if len(env) > 0 {
		return 0, &FieldError{Field: indexed("environment", 0), Reason: quote(env[0]) +
			" is a bpftrace variable; the native engine takes no environment (run the template with engine bpftrace to use it)"}
	}
	return pid, nil
}
