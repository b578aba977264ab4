package tracer

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// ScriptSpec describes the tracer script of one trace.
type ScriptSpec struct {
	// Type selects bpftrace (messages.BPF) or SystemTap (messages.STAP).
	Type messages.TraceType
	// Process is the absolute path of the binary whose functions are probed.
	Process string
	// Functions are the function names (wildcards allowed) to probe.
	// Repeated names are probed once.
	Functions []string
	// Lasting is how long the trace runs: whole seconds, at least one.
	Lasting time.Duration
	// Mode selects what the script reports: "" or messages.ModeEvents.
	Mode messages.Mode
}

// maxScriptLasting is the longest Lasting Script writes, in seconds: beyond
// it bpftrace's interval in nanoseconds would come close to overflowing.
const maxScriptLasting = math.MaxInt32

// stapMaxTimer is the longest interval SystemTap's timer.s accepts.
const stapMaxTimer = 86400

// Script returns the tracer program for s: for each function an entry and a
// return probe, each printing one line of JSON with one printf, and a timer
// that exits after s.Lasting.
//
// bpftrace, for each function f of process p (both always double-quoted,
// which bpftrace 0.17 needs for paths with + , ~ = @ and names with $):
//
//	uprobe:"p":"f" { printf("{\"probe\":\"%s\",\"uid\":%u,...}\n", probe, uid, ...); }
//	uretprobe:"p":"f" { printf("{\"return\":\"%s\",...,\"retval\":%ld}\n", probe, ..., retval); }
//	interval:s:<lasting> { exit(); }
//
// Entry lines carry probe (bpftrace's probe name, "uprobe:/bin/bash:xmalloc",
// with wildcards resolved), uid, pid, tid, cpu, time (nsecs: nanoseconds
// since boot) and process (comm); return lines carry return (the
// "uretprobe:..." name), the same fields and retval (the raw return
// register, signed). bpftrace cannot escape comm, so a process that names
// itself with a double quote, backslash or control character produces a line
// that is not valid JSON.
//
// SystemTap, for each function:
//
//	probe process("p").function("f").call { printf(...) }
//	probe process("p").function("f").return { printf(...) }
//	probe timer.s(<lasting>) { exit() }
//
// with probe/return from ppfunc(), uid(), pid(), tid(), cpu(), time from
// gettimeofday_us() (microseconds since the epoch) and process from
// execname(); strings go through text_str, so quotes, backslashes and
// control characters are escaped. retval is $return where the debuginfo
// gives a scalar return value and returnval() (the raw return register, as
// bpftrace's retval) otherwise, for binaries without debuginfo, void and
// struct functions: @defined($return) keeps pass 2 from failing. timer.s
// accepts at most 86400 seconds, so a longer trace checks a deadline taken
// from gettimeofday_s() every second instead. In SystemTap "@" in a function
// name is the "function@file" source-file qualifier.
//
// Script validates again what it writes (validate.Process and
// validate.Functions, and its own check that every quoted value stays
// inside its quotes), so it never depends on its caller for the script's
// integrity. Every error it returns wraps a *validate.FieldError and matches
// validate.ErrInvalid.
func Script(s ScriptSpec) ([]byte, error) {
	if s.Type != messages.BPF && s.Type != messages.STAP {
		return nil, fmt.Errorf("generating script: %w", &validate.FieldError{Field: "traceType",
			Reason: strconv.QuoteToASCII(string(s.Type)) + ` is not "BPF" or "STAP"`})
	}
	if err := checkScriptSpec(s); err != nil {
		return nil, fmt.Errorf("generating %s script: %w", s.Type, err)
	}
	if err := scriptCheckQuotable("process", s.Process); err != nil {
		return nil, fmt.Errorf("generating %s script: %w", s.Type, err)
	}
	functions := make([]string, 0, len(s.Functions))
	for i, f := range s.Functions {
		if slices.Contains(functions, f) {
			continue
		}
		if !scriptAllQuotable(f) {
			err := scriptCheckQuotable("functions["+strconv.Itoa(i)+"]", f)
			return nil, fmt.Errorf("generating %s script: %w", s.Type, err)
		}
		functions = append(functions, f)
	}
	seconds := int64(s.Lasting / time.Second)
	var b bytes.Buffer
	if s.Type == messages.BPF {
		b.Grow(len(bpfHeader) + len(functions)*(2*len(s.Process)+len(bpfEntry)+len(bpfReturn)+64) + 40)
		writeBPFScript(&b, s.Process, functions, seconds)
	} else {
		b.Grow(len(stapHeader) + len(functions)*(2*len(s.Process)+len(stapEntry)+len(stapReturn)+96) + 160)
		writeSTAPScript(&b, s.Process, functions, seconds)
	}
	return b.Bytes(), nil
}

// checkScriptSpec validates s (of a known Type) with the validate package
// and checks the fields that package does not know about.
func checkScriptSpec(s ScriptSpec) error {
	if s.Mode != "" && s.Mode != messages.ModeEvents {
		return &validate.FieldError{Field: "mode", Reason: strconv.QuoteToASCII(string(s.Mode)) + " is not a known mode (events)"}
	}
	if s.Lasting < time.Second || s.Lasting%time.Second != 0 || s.Lasting/time.Second > maxScriptLasting {
		return &validate.FieldError{Field: "lasting", Reason: s.Lasting.String() +
			" is not a whole number of seconds from 1 to " + strconv.Itoa(maxScriptLasting)}
	}
	if err := validate.Process(s.Process); err != nil {
		return err
	}
	return validate.Functions(s.Type, s.Functions)
}

// scriptCheckQuotable returns an error when v is empty or holds a byte
// that could end or escape a double-quoted string of a bpftrace or
// SystemTap script, or end its line. It accepts only the union of the
// process and function alphabets, independently of package validate.
func scriptCheckQuotable(field, v string) error {
	switch {
	case v == "":
		return &validate.FieldError{Field: field, Reason: "is empty"}
	case !scriptAllQuotable(v):
		return &validate.FieldError{Field: field,
			Reason: strconv.QuoteToASCII(v) + " cannot be quoted safely in a tracer script"}
	}
	return nil
}

// scriptAllQuotable reports whether v is non-empty and every byte of it
// passes scriptQuotable.
func scriptAllQuotable(v string) bool {
	for i := 0; i < len(v); i++ {
		if !scriptQuotable(v[i]) {
			return false
		}
	}
	return v != ""
}

// scriptQuote returns v in double quotes, or scriptCheckQuotable's error.
func scriptQuote(field, v string) (string, error) {
	if err := scriptCheckQuotable(field, v); err != nil {
		return "", err
	}
	return `"` + v + `"`, nil
}

// scriptQuotable reports whether b may appear inside a quoted string of a
// generated script.
func scriptQuotable(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("/._-+@,~=$*?", b) >= 0
}

// The bpftrace script text. bpfEntry and bpfReturn are the probe bodies.
const (
	bpfHeader = "// Generated by lambda-endpoint: one JSON line per function entry and return.\n"
	bpfEntry  = ` {
	printf("{\"probe\":\"%s\",\"uid\":%u,\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"time\":%llu,\"process\":\"%s\"}\n", probe, uid, pid, tid, cpu, nsecs, comm);
}
`
	bpfReturn = ` {
	printf("{\"return\":\"%s\",\"uid\":%u,\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"time\":%llu,\"process\":\"%s\",\"retval\":%ld}\n", probe, uid, pid, tid, cpu, nsecs, comm, retval);
}
`
)

// writeBPFScript writes the bpftrace program; process and functions have
// passed scriptCheckQuotable.
func writeBPFScript(b *bytes.Buffer, process string, functions []string, seconds int64) {
	b.WriteString(bpfHeader)
	for _, f := range functions {
		for _, part := range [...]string{"\nuprobe:\"", process, "\":\"", f, "\"", bpfEntry,
			"uretprobe:\"", process, "\":\"", f, "\"", bpfReturn} {
			b.WriteString(part)
		}
	}
	b.WriteString("\ninterval:s:")
	b.WriteString(strconv.FormatInt(seconds, 10))
	b.WriteString(" { exit(); }\n")
}

// The SystemTap script text. stapEntry and stapReturn are the probe bodies.
const (
	stapHeader = "# Generated by lambda-endpoint: one JSON line per function entry and return.\n"
	stapEntry  = ` {
	printf("{\"probe\":\"%s\",\"uid\":%d,\"pid\":%d,\"tid\":%d,\"cpu\":%d,\"time\":%d,\"process\":\"%s\"}\n", text_str(ppfunc()), uid(), pid(), tid(), cpu(), gettimeofday_us(), text_str(execname()))
}
`
	stapReturn = ` {
	printf("{\"return\":\"%s\",\"uid\":%d,\"pid\":%d,\"tid\":%d,\"cpu\":%d,\"time\":%d,\"process\":\"%s\",\"retval\":%d}\n", text_str(ppfunc()), uid(), pid(), tid(), cpu(), gettimeofday_us(), text_str(execname()), @defined($return) ? $return : returnval())
}
`
)

// writeSTAPScript writes the SystemTap program; process and functions
// have passed scriptCheckQuotable.
func writeSTAPScript(b *bytes.Buffer, process string, functions []string, seconds int64) {
	b.WriteString(stapHeader)
	for _, f := range functions {
		for _, part := range [...]string{"\nprobe process(\"", process, "\").function(\"", f, "\").call", stapEntry,
			"probe process(\"", process, "\").function(\"", f, "\").return", stapReturn} {
			b.WriteString(part)
		}
	}
	n := strconv.FormatInt(seconds, 10)
	if seconds <= stapMaxTimer {
		b.WriteString("\nprobe timer.s(")
		b.WriteString(n)
		b.WriteString(") { exit() }\n")
		return
	}
	b.WriteString("\nglobal lambda_deadline\nprobe begin { lambda_deadline = gettimeofday_s() + ")
	b.WriteString(n)
	b.WriteString(" }\nprobe timer.s(1) { if (gettimeofday_s() >= lambda_deadline) exit() }\n")
}
