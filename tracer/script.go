package tracer

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
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
	// Mode selects what the script reports: "" or messages.ModeEvents (a
	// line per entry and return), messages.ModeCalls (a line per completed
	// call) or messages.ModeSummary (per function a histogram, at the end).
	Mode messages.Mode
	// EntryOnly puts no return probe into the binary: mode events prints
	// entry lines only, and modes calls and summary, which need returns,
	// are refused. It is set for Go binaries (binary.Result.Go), which a
	// return probe crashes.
	EntryOnly bool
	// CPUs is the number of CPU ids the kernel may run the probes on (the
	// highest possible CPU plus one); 0 means this host's (PossibleCPUs).
	// Mode summary of bpftrace gives each CPU indices of its own in the
	// list of cells, so that no two CPUs ever take the same one.
	CPUs int
}

// PossibleCPUs is the number of CPU ids this host's kernel may use: the
// highest in /sys/devices/system/cpu/possible plus one, or
// runtime.NumCPU() when that cannot be read.
func PossibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	highest := -1
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		_, last, _ := strings.Cut(part, "-")
		if last == "" {
			last = part
		}
		n, err := strconv.Atoi(last)
		if err != nil {
			return runtime.NumCPU()
		}
		highest = max(highest, n)
	}
	if highest < 0 {
		return runtime.NumCPU()
	}
	return highest + 1
}

// maxScriptLasting is the longest Lasting Script writes, in seconds: beyond
// it bpftrace's interval in nanoseconds would come close to overflowing.
const maxScriptLasting = math.MaxInt32

// stapMaxTimer is the longest interval SystemTap's timer.s accepts.
const stapMaxTimer = 86400

// Script returns the tracer program for s, for the machine it runs on
// (return probes find their call's entry by the stack pointer, whose
// handling depends on runtime.GOARCH; see below). Every line the program
// prints on stdout, besides bpftrace's "Attaching N probes..." banner, the
// empty lines bpftrace prints when it exits and its "Lost N events" notices,
// is one JSON object. Each mode ends the trace with a timer after s.Lasting.
//
// # Mode events ("" or messages.ModeEvents, the default)
//
// For each function an entry and a return probe, each printing one line of
// JSON with one printf. bpftrace, for each function f of process p (both
// always double-quoted, which bpftrace 0.17 needs for paths with + , ~ = @
// and names with $):
//
//	uprobe:"p":"f" { printf("{\"probe\":\"%s\",\"uid\":%u,...}\n", probe, uid, ...); }
//	uretprobe:"p":"f" { printf("{\"return\":\"%s\",...,\"retval\":%ld}\n", probe, ..., retval); }
//	interval:s:<lasting> { exit(); }
//
// Entry lines carry probe (bpftrace's probe name, "uprobe:/bin/bash:xmalloc",
// with wildcards resolved), uid, pid, tid, cpu, time (nsecs: nanoseconds
// since boot) and process (comm); return lines carry return (the
// "uretprobe:..." name), the same fields and retval (the raw return
// register, signed):
//
//	{"probe":"uprobe:/bin/bash:xmalloc","uid":0,"pid":7,"tid":7,"cpu":1,"time":5066831520,"process":"bash"}
//	{"return":"uretprobe:/bin/bash:xmalloc","uid":0,"pid":7,"tid":7,"cpu":1,"time":5066834211,"process":"bash","retval":94532}
//
// SystemTap, for each function:
//
//	probe process("p").function("f").call { printf(...) }
//	probe process("p").function("f").return { printf(...) }
//	probe timer.s(<lasting>) { exit() }
//
// with probe/return from ppfunc() (the bare function name, "xmalloc"),
// uid(), pid(), tid(), cpu(), time from gettimeofday_us() (microseconds
// since the epoch) and process from execname(). retval is $return where the
// debuginfo gives a scalar return value and returnval() (the raw return
// register, as bpftrace's retval) otherwise, for binaries without
// debuginfo, void and struct functions: @defined($return) keeps pass 2 from
// failing.
//
// # Mode calls (messages.ModeCalls)
//
// One JSON line per completed call, printed by the return probe; the entry
// probe only stores the entry time (bpftrace: one map update, no printf):
//
//	{"function":"uprobe:/bin/bash:xmalloc","uid":0,"pid":7,"tid":7,"cpu":1,"time":5066831520,"process":"bash","duration":2691,"retval":94532}
//
// function is the entry probe's name for bpftrace and ppfunc() for
// SystemTap, as probe in mode events; uid, pid, tid, cpu and process are
// those of the returning thread; time is when the call was entered, in the
// events mode's unit (bpftrace: nanoseconds since boot; SystemTap:
// microseconds since the epoch, derived at return as now minus duration);
// duration is in nanoseconds (bpftrace nsecs, SystemTap ktime_get_ns(), both
// monotonic); retval as in mode events. A return whose entry was not seen
// (the call began before the probes were attached) prints nothing. Under a
// sustained high call rate bpftrace drops the lines it cannot read in time
// and prints "Lost N events" instead; BPFTRACE_PERF_RB_PAGES in the
// template's environment enlarges its buffer (mode events alike).
//
// # Mode summary (messages.ModeSummary)
//
// Nothing is printed while the trace runs: the return probe adds the call to
// a per-function log2 histogram of durations kept in the kernel, and when the
// trace ends (timer, exit, SIGINT; not SIGKILL) one JSON line is printed per
// function that completed at least one call:
//
//	{"function":"uprobe:/bin/bash:xmalloc","hist":[{"le_ns":1023,"count":3840},{"le_ns":2047,"count":339}],"calls":4179}
//
// function as in mode calls. hist lists the non-empty buckets in increasing
// order: bucket b counts the calls whose duration d in nanoseconds has b
// significant bits, 2^(b-1) <= d <= 2^b-1 (b = 0: d = 0), and le_ns is its
// inclusive upper bound 2^b-1. calls is the number of calls, the sum of the
// counts. A trace in which no call completed prints no line.
//
// SystemTap keeps the buckets as statistics (<<<, per CPU, summed when
// read) and prints the functions in name order. bpftrace 0.17 can neither
// read its own per-CPU count() and hist() maps in the kernel nor print a map
// as custom JSON, and a shared counter incremented from several CPUs loses
// increments (read-add-write: 6-12% of the calls were lost with two threads
// calling one function on two CPUs). So each CPU counts in cells of its own,
// keyed by (CPU, function, bucket), listed as they appear at indices of its
// own (CPU c takes c+1, c+1+CPUs, c+1+2*CPUs, ... from a counter only it
// writes, so no two CPUs ever take the same index), and the END probe
// folds the listed cells into per-function buckets and prints them. The END
// probe's loops are checked by the BPF verifier when the trace starts, so
// they are bounded: at most 1024 cells (CPUs x functions x buckets in use)
// and 32 functions (the number of distinct names, plus 24 when a name has a
// wildcard) are reported; beyond that a last line {"truncated":true} says
// that calls are missing. Functions are reported in the order of their
// first listed cell. Map sizes bound the rest: a bpftrace map holds
// BPFTRACE_MAP_KEYS_MAX (default 4096) keys and drops new keys beyond; a
// SystemTap array holds MAXMAPENTRIES (default 2048) entries, and SystemTap
// stops the trace with an "Array overflow" error beyond that.
//
// # Pairing returns with entries (modes calls and summary)
//
// The entry probe stores its time under the thread id and the stack pointer
// (bpftrace @lambda_start[tid, reg("sp")], SystemTap
// lambda_start[tid(), register("rsp")]), which is unique for every live
// frame of a thread, and the return probe looks it up with the stack
// pointer it sees after the return instruction: on amd64 8 bytes higher
// (ret popped the return address), on arm64 the same. So nested and
// recursive calls of traced functions pair correctly, and the entry's map
// slot is freed at return. On other architectures the key is the thread
// alone: a traced function called while another traced call is pending on
// the same thread overwrites its entry, and the outer call is not reported.
// Calls that never return (longjmp over them, exit inside them) leave their
// entry behind: bpftrace maps hold BPFTRACE_MAP_KEYS_MAX (default 4096)
// keys, beyond which new entries are not stored and those calls not
// reported; the SystemTap array wraps (global lambda_start%), evicting the
// oldest entries. When a traced function tail-calls another traced one
// (same frame), only the inner call is reported.
//
// # Entry only (ScriptSpec.EntryOnly: Go binaries)
//
// A return probe is a uretprobe: the kernel replaces the return address on
// the stack with a trampoline's. Go's runtime walks and moves goroutine
// stacks and finds the trampoline where it expects a caller, then crashes the
// program ("fatal error: unknown caller pc"). SystemTap's .return probes are
// uretprobes too. So with EntryOnly mode events writes the entry probes
// alone (no "return" lines: the consumer sees only "probe" lines), and modes
// calls and summary are refused with a *validate.FieldError for "mode".
// Measuring Go returns would take a probe on every RET instruction of the
// function; bpftrace 0.17 as built on Debian refuses such offset or address
// probes unless --unsafe is given ("Can't check if uprobe is in proper
// place"), and the endpoint does not lift that safety for its own scripts.
//
// # Common
//
// SystemTap strings go through text_str, so quotes, backslashes and control
// characters are escaped; bpftrace cannot escape comm, so a process that
// names itself with a double quote, backslash or control character produces
// a line that is not valid JSON. SystemTap's timer.s accepts at most 86400
// seconds, so a longer trace checks a deadline taken from gettimeofday_s()
// every second instead. In SystemTap "@" in a function name is the
// "function@file" source-file qualifier.
//
// Script validates again what it writes (validate.Process and
// validate.Functions, the mode, and its own check that every quoted value
// stays inside its quotes), so it never depends on its caller for the
// script's integrity. Every error it returns wraps a *validate.FieldError
// (Field "traceType", "mode", "lasting", "process", "functions" or
// "functions[i]") and matches validate.ErrInvalid.
func Script(s ScriptSpec) ([]byte, error) {
	return scriptFor(s, runtime.GOARCH)
}

// scriptFor is Script for the architecture arch (a GOARCH value).
func scriptFor(s ScriptSpec, arch string) ([]byte, error) {
	if s.Type != messages.BPF && s.Type != messages.STAP {
		return nil, fmt.Errorf("generating script: %w", &validate.FieldError{Field: "traceType",
			Reason: strconv.QuoteToASCII(string(s.Type)) + ` is not "BPF" or "STAP"`})
	}
	if err := checkScriptSpec(s); err != nil {
		return nil, fmt.Errorf("generating %s script: %w", s.Type, err)
	}
	if s.EntryOnly && s.Mode != "" && s.Mode != messages.ModeEvents {
		return nil, fmt.Errorf("generating %s script: %w", s.Type, &validate.FieldError{Field: "mode",
			Reason: strconv.QuoteToASCII(string(s.Mode)) + " needs return probes, which this binary cannot take (entry only: a Go binary)"})
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
	stack := scriptStackOf(arch)
	// Modes calls and summary list every function twice, with the
	// process, in probe lists.
	lists := 2 * len(functions) * (len(s.Process) + 40)
	for _, f := range functions {
		lists += 2 * len(f)
	}
	var b bytes.Buffer
	switch {
	case s.Type == messages.BPF && (s.Mode == "" || s.Mode == messages.ModeEvents):
		b.Grow(len(bpfHeader) + len(functions)*(2*len(s.Process)+len(bpfEntry)+len(bpfReturn)+64) + 40)
		writeBPFScript(&b, s.Process, functions, seconds, s.EntryOnly)
	case s.Type == messages.BPF && s.Mode == messages.ModeCalls:
		b.Grow(len(bpfCallsHeader) + len(bpfCallsReturn) + len(bpfCallsEnd) + lists + 256)
		writeBPFCalls(&b, s.Process, functions, seconds, stack)
	case s.Type == messages.BPF:
		b.Grow(len(bpfSummaryHeader) + len(bpfSummaryReturn) + len(bpfSummaryReturnIndex) + len(bpfSummaryReturnList) + len(bpfSummaryEndCells) + len(bpfSummaryEndFold) +
			len(bpfSummaryEndPrint) + len(bpfSummaryEndTruncated) + lists + 256)
		cpus := s.CPUs
		if cpus <= 0 {
			cpus = PossibleCPUs()
		}
		writeBPFSummary(&b, s.Process, functions, seconds, stack, cpus)
	case s.Mode == "" || s.Mode == messages.ModeEvents:
		b.Grow(len(stapHeader) + len(functions)*(2*len(s.Process)+len(stapEntry)+len(stapReturn)+96) + 160)
		writeSTAPScript(&b, s.Process, functions, seconds, s.EntryOnly)
	case s.Mode == messages.ModeCalls:
		b.Grow(len(stapCallsHeader) + len(stapCallsReturn) + lists + 384)
		writeSTAPCalls(&b, s.Process, functions, seconds, stack)
	default:
		b.Grow(len(stapSummaryHeader) + len(stapSummaryReturn) + len(stapSummaryEnd) + lists + 384)
		writeSTAPSummary(&b, s.Process, functions, seconds, stack)
	}
	return b.Bytes(), nil
}

// checkScriptSpec validates s (of a known Type) with the validate package
// and checks the fields that package does not know about.
func checkScriptSpec(s ScriptSpec) error {
	switch s.Mode {
	case "", messages.ModeEvents, messages.ModeCalls, messages.ModeSummary:
	default:
		return &validate.FieldError{Field: "mode", Reason: strconv.QuoteToASCII(string(s.Mode)) + " is not a known mode (events, calls or summary)"}
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

// bpfEntryOnlyHeader heads the events script of a Go binary.
const bpfEntryOnlyHeader = "// Generated by lambda-endpoint: one JSON line per function entry; no return probes\n" +
	"// (a Go binary: they would crash it).\n"

// writeBPFScript writes the bpftrace program; process and functions have
// passed scriptCheckQuotable. entryOnly leaves the return probes out.
func writeBPFScript(b *bytes.Buffer, process string, functions []string, seconds int64, entryOnly bool) {
	if entryOnly {
		b.WriteString(bpfEntryOnlyHeader)
	} else {
		b.WriteString(bpfHeader)
	}
	for _, f := range functions {
		for _, part := range [...]string{"\nuprobe:\"", process, "\":\"", f, "\"", bpfEntry} {
			b.WriteString(part)
		}
		if entryOnly {
			continue
		}
		for _, part := range [...]string{"uretprobe:\"", process, "\":\"", f, "\"", bpfReturn} {
			b.WriteString(part)
		}
	}
	writeBPFTimer(b, seconds)
}

// writeBPFTimer writes the probe that ends a bpftrace trace after seconds.
func writeBPFTimer(b *bytes.Buffer, seconds int64) {
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

// stapEntryOnlyHeader heads the events script of a Go binary.
const stapEntryOnlyHeader = "# Generated by lambda-endpoint: one JSON line per function entry; no return probes\n" +
	"# (a Go binary: they would crash it).\n"

// writeSTAPScript writes the SystemTap program; process and functions
// have passed scriptCheckQuotable. entryOnly leaves the return probes out.
func writeSTAPScript(b *bytes.Buffer, process string, functions []string, seconds int64, entryOnly bool) {
	if entryOnly {
		b.WriteString(stapEntryOnlyHeader)
	} else {
		b.WriteString(stapHeader)
	}
	for _, f := range functions {
		for _, part := range [...]string{"\nprobe process(\"", process, "\").function(\"", f, "\").call", stapEntry} {
			b.WriteString(part)
		}
		if entryOnly {
			continue
		}
		for _, part := range [...]string{"probe process(\"", process, "\").function(\"", f, "\").return", stapReturn} {
			b.WriteString(part)
		}
	}
	writeSTAPTimer(b, seconds)
}

// writeSTAPTimer writes the probes that end a SystemTap trace after
// seconds: timer.s when it accepts the interval, else a deadline checked
// every second.
func writeSTAPTimer(b *bytes.Buffer, seconds int64) {
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

// scriptStack holds the expressions with which the entry probe of a call
// keys its start time and the return probe finds it again: the stack
// pointer at entry, unique for every live frame of a thread.
type scriptStack struct {
	bpfEntry, bpfReturn   string // bpftrace
	stapEntry, stapReturn string // SystemTap
}

// scriptStackOf returns the stack expressions for arch (a GOARCH value).
func scriptStackOf(arch string) scriptStack {
	switch arch {
	case "amd64":
		// call pushed the return address, which ret pops before the
		// return probe runs.
		return scriptStack{`reg("sp")`, `reg("sp") - 8`, `register("rsp")`, `register("rsp") - 8`}
	case "arm64":
		// bl keeps the return address in x30: sp is the same at entry and
		// after ret.
		return scriptStack{`reg("sp")`, `reg("sp")`, `register("sp")`, `register("sp")`}
	}
	// Elsewhere the thread alone keys the start time (see Script).
	return scriptStack{"0", "0", "0", "0"}
}

// Bounds of the bpftrace summary's END probe (see Script). Its loops are
// checked by the BPF verifier when the trace starts, which explores every
// iteration: the cell walk costs about 370 instructions per cell, the
// printing about 8300 per function, against the verifier's limit of one
// million (about 0.25 s of CPU for the largest script).
const (
	// summaryMaxCells is how many per-CPU cells (CPU, function, bucket)
	// the END probe folds.
	summaryMaxCells = 1024
	// summaryMaxFunctions is the most functions a summary reports.
	summaryMaxFunctions = 32
	// summaryWildcardFunctions is how many functions a summary reports
	// beyond the distinct names when a name has a wildcard.
	summaryWildcardFunctions = 24
)

// summarySlots returns how many functions the bpftrace summary of
// functions reports.
func summarySlots(functions []string) int {
	n := len(functions)
	if slices.ContainsFunc(functions, func(f string) bool { return strings.ContainsAny(f, "*?") }) {
		n += summaryWildcardFunctions
	}
	return min(n, summaryMaxFunctions)
}

// writeBPFProbes writes the probe list "kind:"process":"f"" of every
// function, one per line, for a single action block.
func writeBPFProbes(b *bytes.Buffer, kind, process string, functions []string) {
	for i, f := range functions {
		if i > 0 {
			b.WriteString(",\n")
		}
		for _, part := range [...]string{kind, ":\"", process, "\":\"", f, "\""} {
			b.WriteString(part)
		}
	}
	b.WriteString("\n")
}

// writeBPFStart writes the entry probes of modes calls and summary: they
// store the entry time and probe under the thread and stack pointer.
func writeBPFStart(b *bytes.Buffer, process string, functions []string, stack scriptStack) {
	b.WriteString("\n")
	writeBPFProbes(b, "uprobe", process, functions)
	b.WriteString("{\n\t@lambda_start[tid, ")
	b.WriteString(stack.bpfEntry)
	b.WriteString("] = (nsecs, probe);\n}\n")
}

// writeBPFReturnHead writes the return probe list and the start of its body
// up to where the entry was found: $start holds (entry nsecs, entry probe).
func writeBPFReturnHead(b *bytes.Buffer, process string, functions []string, stack scriptStack) {
	b.WriteString("\n")
	writeBPFProbes(b, "uretprobe", process, functions)
	b.WriteString("{\n\t$sp = ")
	b.WriteString(stack.bpfReturn)
	b.WriteString(";\n\t$start = @lambda_start[tid, $sp];\n\tif ($start.0 != 0) {\n\t\tdelete(@lambda_start[tid, $sp]);\n")
}

// The bpftrace script text of mode calls.
const (
	bpfCallsHeader = "// Generated by lambda-endpoint: one JSON line per completed call.\n"
	bpfCallsReturn = `		printf("{\"function\":\"%s\",\"uid\":%u,\"pid\":%u,\"tid\":%u,\"cpu\":%u,\"time\":%llu,\"process\":\"%s\",\"duration\":%llu,\"retval\":%ld}\n", $start.1, uid, pid, tid, cpu, $start.0, comm, nsecs - $start.0, retval);
	}
}
`
	bpfCallsEnd = `
END {
	clear(@lambda_start);
}
`
)

// writeBPFCalls writes the bpftrace program of mode calls; process and
// functions have passed scriptCheckQuotable.
func writeBPFCalls(b *bytes.Buffer, process string, functions []string, seconds int64, stack scriptStack) {
	b.WriteString(bpfCallsHeader)
	writeBPFStart(b, process, functions, stack)
	writeBPFReturnHead(b, process, functions, stack)
	b.WriteString(bpfCallsReturn)
	writeBPFTimer(b, seconds)
	b.WriteString(bpfCallsEnd)
}

// The bpftrace script text of mode summary. bpfSummaryReturn computes the
// bucket (the bit length of the duration) with a branch ladder and counts
// the call in its cell, @lambda_cell[cpu, function, bucket] = (count,
// index): a key only this CPU writes, so no increment is lost. A new cell
// is listed in @lambda_list at the next index of its CPU's own sequence
// (@lambda_ncell[cpu], written by that CPU alone): no CPU can overwrite
// another's entry, so no cell is ever lost from the list (a shared counter
// once let two CPUs take one index, and a count went missing). A cell
// beyond the list's bound sets @lambda_trunc. The END probe folds the listed cells into
// @lambda_sum[function, bucket] (a cell is folded at the index it
// records, once), numbering the functions as it meets them, then prints a
// line per function.
const (
	bpfSummaryHeader = "// Generated by lambda-endpoint: per function a call count and a latency histogram,\n" +
		"// printed as JSON lines when the trace ends.\n"
	bpfSummaryReturn = `		$d = nsecs - $start.0;
		$b = (uint64)0;
		if ($d >> 32 != 0) { $d >>= 32; $b += 32; }
		if ($d >> 16 != 0) { $d >>= 16; $b += 16; }
		if ($d >> 8 != 0) { $d >>= 8; $b += 8; }
		if ($d >> 4 != 0) { $d >>= 4; $b += 4; }
		if ($d >> 2 != 0) { $d >>= 2; $b += 2; }
		if ($d >> 1 != 0) { $d >>= 1; $b += 1; }
		$b += $d;
		$cell = @lambda_cell[cpu, $start.1, $b];
		$i = $cell.1;
		if ($i == 0) {
			$i = (++@lambda_ncell[cpu] - 1) * `
	bpfSummaryReturnIndex = ` + (int64)cpu + 1;
			if ($i <= `
	bpfSummaryReturnList = `) {
				@lambda_list[$i] = (cpu, $start.1, $b);
			} else {
				@lambda_trunc = 1;
			}
		}
		@lambda_cell[cpu, $start.1, $b] = ($cell.0 + 1, $i);
	}
}
`
	bpfSummaryEndCells = `
END {
	$i = 1;
	while ($i <= `
	bpfSummaryEndFold = `) {
		$e = @lambda_list[$i];
		$cell = @lambda_cell[$e.0, $e.1, $e.2];
		if ($cell.1 == $i) {
			@lambda_sum[$e.1, $e.2] += $cell.0;
			if (@lambda_slot[$e.1] == 0) {
				$n = ++@lambda_nfn;
				@lambda_slot[$e.1] = $n;
				@lambda_fn[$n] = $e.1;
			}
		}
		$i++;
	}
	$slot = 1;
	while ($slot <= `
	bpfSummaryEndPrint = `) {
		if ($slot > @lambda_nfn) {
			break;
		}
		$f = @lambda_fn[$slot];
		printf("{\"function\":\"%s\",\"hist\":[", $f);
		$calls = 0;
		$b = (uint64)0;
		while ($b < 64) {
			$n = @lambda_sum[$f, $b];
			if ($n != 0) {
				if ($calls == 0) {
					printf("{\"le_ns\":%llu,\"count\":%llu}", (1 << $b) - 1, $n);
				} else {
					printf(",{\"le_ns\":%llu,\"count\":%llu}", (1 << $b) - 1, $n);
				}
				$calls += $n;
			}
			$b++;
		}
		printf("],\"calls\":%llu}\n", $calls);
		$slot++;
	}
	if (@lambda_trunc != 0 || @lambda_nfn > `
	bpfSummaryEndTruncated = ` {
		printf("{\"truncated\":true}\n");
	}
	clear(@lambda_cell);
	clear(@lambda_list);
	clear(@lambda_ncell);
	clear(@lambda_trunc);
	clear(@lambda_sum);
	clear(@lambda_slot);
	clear(@lambda_fn);
	clear(@lambda_nfn);
	clear(@lambda_start);
}
`
)

// writeBPFSummary writes the bpftrace program of mode summary; process and
// functions have passed scriptCheckQuotable.
func writeBPFSummary(b *bytes.Buffer, process string, functions []string, seconds int64, stack scriptStack, cpus int) {
	b.WriteString(bpfSummaryHeader)
	writeBPFStart(b, process, functions, stack)
	writeBPFReturnHead(b, process, functions, stack)
	cells, slots := strconv.Itoa(summaryMaxCells), strconv.Itoa(summarySlots(functions))
	for _, part := range [...]string{bpfSummaryReturn, strconv.Itoa(cpus), bpfSummaryReturnIndex, cells, bpfSummaryReturnList} {
		b.WriteString(part)
	}
	writeBPFTimer(b, seconds)
	for _, part := range [...]string{bpfSummaryEndCells, cells, bpfSummaryEndFold, slots, bpfSummaryEndPrint,
		slots, ")", bpfSummaryEndTruncated} {
		b.WriteString(part)
	}
}

// writeSTAPProbes writes the probe list of every function's kind ("call"
// or "return") probe, one per line, for a single handler.
func writeSTAPProbes(b *bytes.Buffer, kind, process string, functions []string) {
	b.WriteString("\nprobe ")
	for i, f := range functions {
		if i > 0 {
			b.WriteString(",\n      ")
		}
		for _, part := range [...]string{"process(\"", process, "\").function(\"", f, "\").", kind} {
			b.WriteString(part)
		}
	}
	b.WriteString("\n")
}

// writeSTAPStart writes the entry probes of modes calls and summary, which
// store the entry time under the thread and stack pointer, and the return
// probe list and the start of its body up to where the entry was found:
// start holds the entry's ktime_get_ns().
func writeSTAPStart(b *bytes.Buffer, process string, functions []string, stack scriptStack) {
	writeSTAPProbes(b, "call", process, functions)
	b.WriteString("{\n\tlambda_start[tid(), ")
	b.WriteString(stack.stapEntry)
	b.WriteString("] = ktime_get_ns()\n}\n")
	writeSTAPProbes(b, "return", process, functions)
	b.WriteString("{\n\tsp = ")
	b.WriteString(stack.stapReturn)
	b.WriteString("\n\tstart = lambda_start[tid(), sp]\n\tif (start) {\n\t\tdelete lambda_start[tid(), sp]\n")
}

// The SystemTap script text of mode calls.
const (
	stapCallsHeader = "# Generated by lambda-endpoint: one JSON line per completed call.\n\nglobal lambda_start%\n"
	stapCallsReturn = `		duration = ktime_get_ns() - start
		printf("{\"function\":\"%s\",\"uid\":%d,\"pid\":%d,\"tid\":%d,\"cpu\":%d,\"time\":%d,\"process\":\"%s\",\"duration\":%d,\"retval\":%d}\n", text_str(ppfunc()), uid(), pid(), tid(), cpu(), (gettimeofday_ns() - duration) / 1000, text_str(execname()), duration, @defined($return) ? $return : returnval())
	}
}
`
)

// writeSTAPCalls writes the SystemTap program of mode calls; process and
// functions have passed scriptCheckQuotable.
func writeSTAPCalls(b *bytes.Buffer, process string, functions []string, seconds int64, stack scriptStack) {
	b.WriteString(stapCallsHeader)
	writeSTAPStart(b, process, functions, stack)
	b.WriteString(stapCallsReturn)
	writeSTAPTimer(b, seconds)
}

// The SystemTap script text of mode summary. The end probe first finds
// each function's lowest and highest bucket, then prints the functions in
// name order with their buckets in increasing order.
const (
	stapSummaryHeader = "# Generated by lambda-endpoint: per function a call count and a latency histogram,\n" +
		"# printed as JSON lines when the trace ends.\n\nglobal lambda_start%, lambda_hist, lambda_lo, lambda_hi\n"
	stapSummaryReturn = `		d = ktime_get_ns() - start
		b = 0
		if (d >> 32) { d >>= 32; b += 32 }
		if (d >> 16) { d >>= 16; b += 16 }
		if (d >> 8) { d >>= 8; b += 8 }
		if (d >> 4) { d >>= 4; b += 4 }
		if (d >> 2) { d >>= 2; b += 2 }
		if (d >> 1) { d >>= 1; b += 1 }
		lambda_hist[ppfunc(), b + d] <<< 1
	}
}
`
	stapSummaryEnd = `
probe end
{
	foreach ([f, b] in lambda_hist) {
		if (!(f in lambda_lo) || b < lambda_lo[f])
			lambda_lo[f] = b
		if (!(f in lambda_hi) || b > lambda_hi[f])
			lambda_hi[f] = b
	}
	foreach (f+ in lambda_lo) {
		printf("{\"function\":\"%s\",\"hist\":[", text_str(f))
		calls = 0
		for (b = lambda_lo[f]; b <= lambda_hi[f]; b++) {
			if ([f, b] in lambda_hist) {
				n = @count(lambda_hist[f, b])
				printf("%s{\"le_ns\":%d,\"count\":%d}", calls ? "," : "", (1 << b) - 1, n)
				calls += n
			}
		}
		printf("],\"calls\":%d}\n", calls)
	}
}
`
)

// writeSTAPSummary writes the SystemTap program of mode summary; process
// and functions have passed scriptCheckQuotable.
func writeSTAPSummary(b *bytes.Buffer, process string, functions []string, seconds int64, stack scriptStack) {
	b.WriteString(stapSummaryHeader)
	writeSTAPStart(b, process, functions, stack)
	b.WriteString(stapSummaryReturn)
	writeSTAPTimer(b, seconds)
	b.WriteString(stapSummaryEnd)
}
