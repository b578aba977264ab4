package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

const tracesHelp = `Starts, lists, kills and watches traces on the endpoint, and shows the runs of
its history.`

var traceCommands = []command{
	{
		name: "start", args: "TEMPLATE-ID",
		help: `Starts a template as a trace and prints its thread and path (POST /trace/start).
--engine picks what runs a BPF trace (bpftrace or native); without it the
request names no engine and the endpoint's lambda.engine decides.
With --watch it follows the trace until it is delivered, prints how it ended
(reason, exit code and the end of the tracer's stderr) and exits 1 unless the
reason is completed, killed or timed-out.
Example: lambda-endpoint traces start --config var/lambda.toml --lasting 30s --engine native --watch 1`,
		flags: func(fs *flag.FlagSet) {
			fs.String("type", "BPF", "tracer type of the template: BPF or STAP")
			fs.String("lasting", "", "how long the trace runs: seconds (60) or a duration (10m); required")
			fs.String("mode", "", "what the trace reports: events (default), calls or summary")
			fs.String("engine", "", "what runs a BPF trace: bpftrace or native (default: the endpoint's lambda.engine)")
			fs.Bool("watch", false, "then watch the trace until it is delivered, print how it ended (reason, exit code, end of stderr)\nand exit 1 unless it completed, was killed or timed out")
			fs.Duration("interval", time.Second, "with --watch: refresh period")
		},
	},
	{name: "ls", help: "Lists the running traces (GET /traces/running/all), delivering ones included."},
	{name: "kill", args: "PATH...", help: `Kills running traces by path (POST /trace/kill); their output is still delivered.
A PATH where nothing runs is reported ("nothing running at PATH") and makes
the command exit 1, after the others are killed.`},
	{
		name: "watch", args: "[PATH...]",
		help: `Shows a live progress line per trace until it is delivered.
Each line: bytes read, chunks acknowledged by the platform, time left, state
(and lost events once the endpoint reports them).
On a terminal the lines are redrawn in place; otherwise a line is printed
whenever a trace's progress changes (--json: one RunningInfo object per line).
With PATHs it ends when all of them are delivered (no longer listed);
without, it watches every trace until interrupted. A trace that is gone is
reported with how it ended, from the run history: "PATH: delivered: REASON,
exit code N" (or "PATH: ended: ..." for a reason other than completed,
killed or timed-out, which makes a watch of PATHs exit 1), then the end of
its stderr.`,
		flags: func(fs *flag.FlagSet) { fs.Duration("interval", time.Second, "refresh period") },
	},
	{
		name: "history", args: "",
		help: `Lists the endpoint's recent runs and how they ended (GET /traces/history).
Newest first: running, delivering, finished and interrupted ones.
Example: lambda-endpoint traces history --config var/lambda.toml --state finished --limit 5`,
		flags: func(fs *flag.FlagSet) {
			fs.Int("limit", 20, fmt.Sprintf("how many runs, 1 to %d", maxHistoryLimit))
			fs.String("state", "", "only runs in these states, comma-separated: running, delivering, finished, interrupted")
			fs.String("before", "", "the page after this cursor (printed when there are more runs)")
		},
	},
	{
		name: "describe", args: "PATH",
		help: `Shows one run of the history in full (GET /traces/history?path=PATH).
Everything the endpoint knows about the run of the trace at PATH: its
template, times, state, reason, exit code, bytes and chunks, sha256 and the
end of the tracer's stderr.
Exits 1 with "no run at PATH" when the history holds none.`,
	},
}

func init() {
	traceCommands[0].run = tracesStart
	traceCommands[1].run = tracesLs
	traceCommands[2].run = tracesKill
	traceCommands[3].run = tracesWatch
	traceCommands[4].run = tracesHistory
	traceCommands[5].run = tracesDescribe
}

// Traces runs "lambda-endpoint traces ARGS...".
func Traces(ctx context.Context, args []string, env Env) error {
	return dispatch(ctx, "traces", tracesHelp, traceCommands, args, env)
}

func tracesStart(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() != 1 {
		return usagef("give exactly one template id")
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id < 1 {
		return usagef("template id %q: want a positive integer", fs.Arg(0))
	}
	if flagValue(co, "lasting") == "" {
		return usagef("--lasting is required")
	}
	lasting, err := parseLasting(flagValue(co, "lasting"))
	if err != nil {
		return usagef("%v", err)
	}
	engine := flagValue(co, "engine")
	switch engine {
	case "", "bpftrace", "native": // "": not given, the endpoint's default
	default:
		return usagef("--engine %q: want bpftrace or native", engine)
	}
	typ := strings.ToUpper(flagValue(co, "type"))
	s, raw, err := c.Start(ctx, StartRequest{TraceT: typ, TraceID: id, Lasting: lasting,
		Mode: flagValue(co, "mode"), Engine: engine})
	if err != nil {
		return typeHint(ctx, c, err, typ, id)
	}
	if co.json {
		writeRaw(env.Stdout, raw)
	} else {
		fmt.Fprintf(env.Stdout, "thread %d started: %s\n", s.Thread, s.FilePath)
	}
	if flagValue(co, "watch") != "true" {
		return nil
	}
	interval, _ := time.ParseDuration(flagValue(co, "interval"))
	return watch(ctx, c, []string{s.FilePath}, interval, co.json, env)
}

func tracesLs(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	rs, raw, err := c.Running(ctx)
	if err != nil {
		return err
	}
	if co.json {
		return writeRaw(env.Stdout, raw)
	}
	return writeRunning(env.Stdout, rs, env.now())
}

func writeRunning(w io.Writer, rs []Running, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "THREAD\tTYPE\tMODE\tSTATE\tREAD\tACKED\tLEFT\tPATH")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d chunks\t%s\t%s\n", r.Thread, r.TraceType, dash(r.Mode), state(r),
			size(r.BytesRead), r.ChunksSubmitted, left(r, now), r.FilePath)
	}
	return tw.Flush()
}

func tracesKill(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() == 0 {
		return usagef("give the paths of the traces to kill")
	}
	var none []string
	for _, p := range fs.Args() {
		found, err := c.Kill(ctx, p)
		if err != nil {
			return err
		}
		if !found {
			none = append(none, p)
			continue
		}
		if co.json {
			fmt.Fprintf(env.Stdout, `{"killed":%q}`+"\n", p)
		} else {
			fmt.Fprintf(env.Stdout, "killed %s\n", p)
		}
	}
	if len(none) > 0 {
		return fmt.Errorf("nothing running at %s", strings.Join(none, ", "))
	}
	return nil
}

func tracesWatch(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	interval, _ := time.ParseDuration(flagValue(co, "interval"))
	return watch(ctx, c, fs.Args(), interval, co.json, env)
}

// watch polls the endpoint every interval and shows the traces' progress
// until every path in paths is no longer listed (with no paths: until ctx
// is done).
func watch(ctx context.Context, c *Client, paths []string, interval time.Duration, asJSON bool, env Env) error {
	if interval <= 0 {
		interval = time.Second
	}
	w := &watcher{out: env.Stdout, json: asJSON, terminal: !asJSON && env.Terminal != nil && env.Terminal(), last: map[string]string{}, reported: map[string]bool{},
		outcome: func(p string) (Run, lookup) { return finalRun(ctx, c, p, min(interval, 250*time.Millisecond)) }}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		rs, gone, err := poll(ctx, c, paths)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.show(rs, gone, env.now())
		if len(paths) > 0 && len(rs) == 0 {
			return errors.Join(w.failed...)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// poll returns the listed traces among paths (all with no paths) and the
// paths no longer listed.
func poll(ctx context.Context, c *Client, paths []string) ([]Running, []string, error) {
	if len(paths) == 0 {
		rs, _, err := c.Running(ctx)
		return rs, nil, err
	}
	var rs []Running
	var gone []string
	for _, p := range paths {
		r, ok, err := c.RunningOne(ctx, p)
		switch {
		case err != nil:
			return nil, nil, err
		case ok:
			rs = append(rs, r)
		default:
			gone = append(gone, p)
		}
	}
	return rs, gone, nil
}

// lookup is what a look-up in the run history found.
type lookup int

const (
	lookupUnknown lookup = iota // no answer: the endpoint keeps no history, or it could not be asked
	lookupNone                  // the history has no run at the path
	lookupFound
)

// finalRun returns the history's run of the trace at path once it is
// final (finished or interrupted: the history is written behind the
// delivery), polling every period for up to finalRunWait; a run that does
// not get there in time is returned as it is.
func finalRun(ctx context.Context, c *Client, path string, period time.Duration) (Run, lookup) {
	ctx, cancel := context.WithTimeout(ctx, finalRunWait)
	defer cancel()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		r, ok, err := c.RunOf(ctx, path)
		switch {
		case err != nil:
			return Run{}, lookupUnknown
		case !ok:
			return Run{}, lookupNone
		}
		if r.State == stateFinished || r.State == stateInterrupted {
			return r, lookupFound
		}
		select {
		case <-ctx.Done():
			return r, lookupFound
		case <-tick.C:
		}
	}
}

// finalRunWait bounds how long a watch waits for the history to record how
// a trace that is no longer listed ended.
const finalRunWait = 10 * time.Second

// The final run states of the history (persistence.RunFinished and
// RunInterrupted).
const (
	stateFinished    = "finished"
	stateInterrupted = "interrupted"
)

// historyStates are the states GET /traces/history filters on.
var historyStates = []string{messages.StateRunning, messages.StateDelivering, stateFinished, stateInterrupted}

// maxHistoryLimit is the endpoint's largest ?limit= (persistence.MaxRunLimit).
const maxHistoryLimit = 500

// endedWell reports whether reason is one a watch exits 0 for: the trace
// ran its course (completed; timed-out: the watchdog stopped a tracer that
// outlived its lasting) or was killed on request (messages.Reason*).
func endedWell(reason string) bool {
	switch reason {
	case messages.ReasonCompleted, messages.ReasonKilled, messages.ReasonTimedOut:
		return true
	}
	return false
}

// EndError is a watched trace that ended for a reason other than
// completed, killed or timed-out.
type EndError struct {
	Path   string
	Reason string
	Code   *int
}

func (e *EndError) Error() string {
	return fmt.Sprintf("trace %s ended: %s", e.Path, reasonCode(e.Reason, e.Code))
}

// reasonCode is "failed, exit code 1" (or "..., no exit code").
func reasonCode(reason string, code *int) string {
	if code == nil {
		return reason + ", no exit code"
	}
	return fmt.Sprintf("%s, exit code %d", reason, *code)
}

// watcher renders the progress lines.
type watcher struct {
	out      io.Writer
	json     bool
	terminal bool
	drawn    int               // lines drawn last time (terminal)
	last     map[string]string // path -> last line key shown
	reported map[string]bool   // paths reported gone
	// outcome looks up how a trace no longer listed ended; nil: no look-up.
	outcome func(path string) (Run, lookup)
	failed  []error // *EndError of the traces gone that did not end well
}

// goneJSON is the --json line of a trace no longer listed.
type goneJSON struct {
	FilePath   string  `json:"filePath"`
	State      string  `json:"state"` // delivered, ended, "not running (or already delivered)" or "no run at this path"
	Reason     string  `json:"reason,omitempty"`
	Code       *int    `json:"code,omitempty"`
	StderrTail *string `json:"stderrTail,omitempty"`
}

// gone is the report of the trace at p no longer listed: how it ended, if
// the history says, then the end of its stderr.
func (w *watcher) gone(p string, shown bool) string {
	g := goneJSON{FilePath: p, State: "not running (or already delivered)"}
	if shown {
		g.State = "delivered"
	}
	run, found := Run{}, lookupUnknown
	if w.outcome != nil {
		run, found = w.outcome(p)
	}
	if found == lookupNone && !shown {
		// Never seen here, and the history knows no run there: a wrong
		// path, not a trace that went by.
		g.State = "no run at this path"
		w.failed = append(w.failed, fmt.Errorf("no run at %s", p))
	}
	if found == lookupFound && run.Reason != "" {
		g.State, g.Reason, g.Code, g.StderrTail = "delivered", run.Reason, run.Code, run.StderrTail
		if !endedWell(run.Reason) {
			g.State = "ended"
			w.failed = append(w.failed, &EndError{Path: p, Reason: run.Reason, Code: run.Code})
		}
	}
	if w.json {
		b, _ := json.Marshal(g)
		return string(b)
	}
	if g.Reason == "" {
		return p + ": " + g.State
	}
	return p + ": " + g.State + ": " + reasonCode(g.Reason, g.Code) + stderrBlock(g.StderrTail, watchStderrLines)
}

// watchStderrLines is how many lines of a stderr tail a watch prints
// (traces describe prints all the endpoint keeps).
const watchStderrLines = 20

// stderrBlock is "\nstderr:\n  LINE..." for a non-empty stderr tail, or
// "": its last maxLines lines (all for maxLines <= 0), and then the header
// says "stderr (last 20 of 64 lines):".
func stderrBlock(tail *string, maxLines int) string {
	if tail == nil || strings.TrimSpace(*tail) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(*tail, "\n"), "\n")
	var b strings.Builder
	if maxLines > 0 && len(lines) > maxLines {
		fmt.Fprintf(&b, "\nstderr (last %d of %d lines):", maxLines, len(lines))
		lines = lines[len(lines)-maxLines:]
	} else {
		b.WriteString("\nstderr:")
	}
	for _, l := range lines {
		b.WriteString("\n  " + l)
	}
	return b.String()
}

func (w *watcher) show(rs []Running, gone []string, now time.Time) {
	listed := map[string]bool{}
	var lines, done []string // live progress lines; lines about traces gone
	for _, r := range rs {
		listed[r.FilePath] = true
		key := progressKey(r)
		if w.terminal {
			lines = append(lines, progressLine(r, now))
		} else if w.last[r.FilePath] != key {
			if w.json {
				b, _ := json.Marshal(r)
				lines = append(lines, string(b))
			} else {
				lines = append(lines, progressLine(r, now))
			}
		}
		w.last[r.FilePath] = key
	}
	// Traces shown before and listed no more were delivered; a watched
	// path never seen was not running (or already delivered).
	for p := range w.last {
		if !listed[p] {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		if w.reported[p] {
			continue
		}
		w.reported[p] = true
		_, shown := w.last[p]
		delete(w.last, p)
		done = append(done, w.gone(p, shown))
	}
	if w.terminal {
		var b strings.Builder
		for range w.drawn {
			b.WriteString("\x1b[1A\x1b[2K") // up one line, clear it
		}
		if len(lines) == 0 && len(done) == 0 {
			lines = []string{"no traces running"}
		}
		for _, l := range done { // printed once, above the live lines
			b.WriteString(l)
			b.WriteByte('\n')
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		w.drawn = len(lines)
		io.WriteString(w.out, b.String())
		return
	}
	for _, l := range append(lines, done...) {
		fmt.Fprintln(w.out, l)
	}
}

// progressKey is what changes a trace's progress (not the clock).
func progressKey(r Running) string {
	lost := "-"
	if r.LostEvents != nil {
		lost = strconv.FormatInt(*r.LostEvents, 10)
	}
	return fmt.Sprintf("%s|%s|%d|%d|%d|%s", r.State, r.Reason, r.BytesRead, r.BytesSubmitted, r.ChunksSubmitted, lost)
}

// progressLine is one trace's progress, e.g.
// "thread 5 BPF events running  read 12.0 KiB  acked 3 chunks (12.0 KiB)  left 0:42  /tmp/x.trace".
func progressLine(r Running, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "thread %d %s %s %s  read %s  acked %d chunks (%s)  left %s", r.Thread, r.TraceType, dash(r.Mode), state(r),
		size(r.BytesRead), r.ChunksSubmitted, size(r.BytesSubmitted), left(r, now))
	if r.LostEvents != nil {
		fmt.Fprintf(&b, "  lost %d events", *r.LostEvents)
	}
	b.WriteString("  " + r.FilePath)
	return b.String()
}

func state(r Running) string {
	s := dash(r.State)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// left is the time until the trace's lasting runs out, h:mm:ss or m:ss.
func left(r Running, now time.Time) string {
	if r.StartedAt.IsZero() {
		return "-"
	}
	d := r.StartedAt.Add(time.Duration(r.Lasting) * time.Second).Sub(now)
	if r.State == "delivering" {
		d = 0
	}
	return clock(d)
}

// size is n bytes in B, KiB, MiB or GiB.
func size(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
