// Command faketracer stands in for bpftrace in the tracer package's tests.
//
// It is run exactly like a tracer, "faketracer SCRIPT [OPTIONS...]", so the
// real launch path drives it. Its behaviour is the first line of the SCRIPT
// file, a mode word followed by its arguments:
//
//	exit CODE          write one line to stderr, exit with CODE at once
//	raise SIGNAL       kill itself with signal number SIGNAL
//	flood BYTES [hold] write BYTES bytes of NDJSON to stdout as fast as
//	                   possible (rounded up to whole 1024-byte lines, 64 KiB
//	                   per write), then "flood: wrote N bytes" to stderr,
//	                   exit 0; with "hold", see below
//	linewise BYTES [RATE [hold]]
//	                   write BYTES bytes (rounded up to whole lines) of
//	                   140-byte NDJSON lines to stdout, one write(2) per
//	                   line as bpftrace writes its printf output; RATE, if
//	                   not 0, paces them to about RATE lines per second
//	                   (checked every 256 lines); then "linewise: wrote N
//	                   bytes" to stderr, exit 0. With "hold" (flood too), it
//	                   closes stdout after the output and exits 0 only at
//	                   SIGINT or SIGTERM: the process stays alive while its
//	                   reader delivers, so that its reader's /proc counters
//	                   (which take in a child's when it is reaped) hold the
//	                   reader's own syscalls only
//	stderrflood BYTES  write exactly BYTES bytes to stderr, the last ones
//	                   being "END-OF-STDERR\n", exit 0
//	silent DURATION    write nothing, exit 0 after DURATION (seconds, or Go
//	                   syntax such as "1500ms"; also for INTERVAL below)
//	ignoreint          ignore SIGINT, print {"ready":true}, then a line
//	                   every 100ms forever
//	fork N [setsid]    start N children that sleep forever and share its
//	                   stdout and stderr, print {"child":PID} for each, then
//	                   {"ready":true}, and run until a signal kills it;
//	                   "setsid" puts each child in a session of its own,
//	                   outside the tracer's process group
//	lines N INTERVAL   print N lines {"seq":I}, one per INTERVAL, exit 0
//	alloc MIB          allocate and touch MIB MiB, print {"allocated":MIB},
//	                   exit 0
//	forkbomb N         try to start N sleeping children, print
//	                   {"started":S,"refused":R}, kill them, exit 0
//	echoenv            print {"args":[...]} (the arguments after SCRIPT) and
//	                   then {"env":"NAME=value"} per variable, exit 0
//	stdin              print {"stdin":"..."} with all of stdin, exit 0
//	sigint-summary     print {"ready":true}, wait for SIGINT, print
//	                   {"summary":true} and exit 0 (as bpftrace prints its
//	                   maps when interrupted)
//
// When the environment holds BPFTRACE_FAKE_MODE (or SYSTEMTAP_FAKE_MODE),
// its value is used instead of the script's first line: that is how tests
// drive it through the real endpoint, which writes a real tracer script and
// passes only allow-listed template variables to the tracer.
//
// Every stdout line is one JSON object. "faketracer -child" is the sleeping
// child of the fork mode.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-child" {
		for {
			time.Sleep(time.Hour)
		}
	}
	if len(os.Args) < 2 {
		fail("usage: faketracer SCRIPT [OPTIONS...]")
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("reading script: %v", err)
	}
	line, _, _ := strings.Cut(string(script), "\n")
	for _, name := range []string{"BPFTRACE_FAKE_MODE", "SYSTEMTAP_FAKE_MODE"} {
		if mode, ok := os.LookupEnv(name); ok {
			line = mode
		}
	}
	words := strings.Fields(line)
	if len(words) == 0 {
		fail("empty script %s", os.Args[1])
	}
	run(words[0], words[1:])
}

func run(mode string, args []string) {
	switch mode {
	case "exit":
		code := intArg(args, 0)
		fmt.Fprintf(os.Stderr, "faketracer: exiting with code %d\n", code)
		os.Exit(code)
	case "raise":
		sig := syscall.Signal(intArg(args, 0))
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Minute)
		fail("signal %d did not kill me", sig)
	case "flood":
		flood(intArg(args, 0))
		holdIf(args, 1)
	case "linewise":
		rate := 0
		if len(args) > 1 {
			rate = intArg(args, 1)
		}
		linewise(intArg(args, 0), rate)
		holdIf(args, 2)
	case "stderrflood":
		stderrFlood(intArg(args, 0))
	case "silent":
		time.Sleep(durationArg(args, 0))
	case "ignoreint":
		signal.Ignore(syscall.SIGINT)
		emit(map[string]any{"ready": true})
		for i := 0; ; i++ {
			emit(map[string]any{"seq": i})
			time.Sleep(100 * time.Millisecond)
		}
	case "fork":
		fork(intArg(args, 0), len(args) > 1 && args[1] == "setsid")
	case "lines":
		n, interval := intArg(args, 0), durationArg(args, 1)
		for i := 0; i < n; i++ {
			emit(map[string]any{"seq": i})
			time.Sleep(interval)
		}
	case "alloc":
		n := intArg(args, 0)
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		emit(map[string]any{"allocated": len(keep)})
	case "forkbomb":
		started, refused := 0, 0
		var children []*exec.Cmd
		for i := 0; i < intArg(args, 0); i++ {
			c := exec.Command(os.Args[0], "-child")
			if err := c.Start(); err != nil {
				refused++
				continue
			}
			started++
			children = append(children, c)
		}
		for _, c := range children {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		emit(map[string]any{"started": started, "refused": refused})
	case "echoenv":
		emit(map[string]any{"args": os.Args[2:]})
		for _, kv := range os.Environ() {
			emit(map[string]any{"env": kv})
		}
	case "stdin":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail("reading stdin: %v", err)
		}
		emit(map[string]any{"stdin": string(b)})
	case "sigint-summary":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT)
		emit(map[string]any{"ready": true})
		<-sigs
		emit(map[string]any{"summary": true})
	default:
		fail("unknown mode %q", mode)
	}
}

// flood writes at least n bytes of 1024-byte JSON lines.
func flood(n int) {
	const lineLen = 1024
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	pad := strings.Repeat("x", lineLen)
	written := 0
	for seq := 0; written < n; seq++ {
		prefix := `{"seq":` + strconv.Itoa(seq) + `,"pad":"`
		k, err := fmt.Fprintf(w, "%s%s\"}\n", prefix, pad[:lineLen-len(prefix)-3])
		if err != nil {
			fail("writing stdout: %v", err)
		}
		written += k
	}
	if err := w.Flush(); err != nil {
		fail("writing stdout: %v", err)
	}
	fmt.Fprintf(os.Stderr, "flood: wrote %d bytes\n", written)
}

// linewiseLen is the length of one line of the linewise mode, about what
// bpftrace prints per event in mode events.
const linewiseLen = 140

// linewise writes at least n bytes of linewiseLen-byte JSON lines, one
// write(2) each, at about rate lines per second (0: as fast as possible).
func linewise(n, rate int) {
	pad := strings.Repeat("x", linewiseLen)
	line := make([]byte, 0, linewiseLen)
	written := 0
	t0 := time.Now()
	for seq := 0; written < n; seq++ {
		line = append(line[:0], `{"seq":`...)
		line = strconv.AppendInt(line, int64(seq), 10)
		line = append(line, `,"pad":"`...)
		line = append(line, pad[:linewiseLen-len(line)-3]...)
		line = append(line, "\"}\n"...)
		if _, err := os.Stdout.Write(line); err != nil {
			fail("writing stdout: %v", err)
		}
		written += len(line)
		if rate > 0 && seq%256 == 255 {
			due := t0.Add(time.Duration(float64(seq+1) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "linewise: wrote %d bytes\n", written)
}

// holdIf, when args[i] is "hold", closes stdout and waits for SIGINT or
// SIGTERM.
func holdIf(args []string, i int) {
	if i >= len(args) || args[i] != "hold" {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := os.Stdout.Close(); err != nil {
		fail("closing stdout: %v", err)
	}
	<-sigs
}

// stderrFlood writes exactly n bytes to stderr ending in the marker.
func stderrFlood(n int) {
	const marker = "END-OF-STDERR\n"
	chunk := []byte(strings.Repeat(strings.Repeat("e", 63)+"\n", 512))
	left := n - len(marker)
	for left > 0 {
		c := chunk[:min(left, len(chunk))]
		if _, err := os.Stderr.Write(c); err != nil {
			os.Exit(1)
		}
		left -= len(c)
	}
	_, _ = os.Stderr.WriteString(marker[max(0, len(marker)-n):])
}

// fork starts n sleeping children that inherit stdout and stderr.
func fork(n int, setsid bool) {
	self, err := os.Executable()
	if err != nil {
		fail("finding myself: %v", err)
	}
	for i := 0; i < n; i++ {
		cmd := exec.Command(self, "-child")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
		if err := cmd.Start(); err != nil {
			fail("starting child: %v", err)
		}
		emit(map[string]any{"child": cmd.Process.Pid})
	}
	emit(map[string]any{"ready": true})
	for {
		time.Sleep(time.Hour)
	}
}

func emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail("encoding: %v", err)
	}
	if _, err := os.Stdout.Write(append(b, '\n')); err != nil {
		os.Exit(1)
	}
}

func intArg(args []string, i int) int {
	if i >= len(args) {
		fail("missing argument %d", i+1)
	}
	n, err := strconv.Atoi(args[i])
	if err != nil {
		fail("argument %d: %v", i+1, err)
	}
	return n
}

func durationArg(args []string, i int) time.Duration {
	if i >= len(args) {
		fail("missing argument %d", i+1)
	}
	if n, err := strconv.Atoi(args[i]); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(args[i])
	if err != nil {
		fail("argument %d: %v", i+1, err)
	}
	return d
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "faketracer: "+format+"\n", a...)
	os.Exit(2)
}
