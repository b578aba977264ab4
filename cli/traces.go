package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

const tracesHelp = `Starts, lists, kills and watches traces on the endpoint.`

var traceCommands = []command{
	{
		name: "start", args: "TEMPLATE-ID",
		help: `Starts a template as a trace and prints its thread and path (POST /trace/start).
--engine picks what runs a BPF trace (bpftrace or native); without it the
request names no engine and the endpoint's lambda.engine decides.
Example: lambda-endpoint traces start --config var/lambda.toml --lasting 30s --engine native --watch 1`,
		flags: func(fs *flag.FlagSet) {
			fs.String("type", "BPF", "tracer type of the template: BPF or STAP")
			fs.String("lasting", "", "how long the trace runs: seconds (60) or a duration (10m); required")
			fs.String("mode", "", "what the trace reports: events (default), calls or summary")
			fs.String("engine", "", "what runs a BPF trace: bpftrace or native (default: the endpoint's lambda.engine)")
			fs.Bool("watch", false, "then watch the trace until it is delivered")
			fs.Duration("interval", time.Second, "with --watch: refresh period")
		},
	},
	{name: "ls", help: "Lists the running traces (GET /traces/running/all), delivering ones included."},
	{name: "kill", args: "PATH...", help: "Kills running traces by path (POST /trace/kill); their output is still delivered."},
	{
		name: "watch", args: "[PATH...]",
		help: `Shows a live progress line per trace until it is delivered.
Each line: bytes read, chunks acknowledged by the platform, time left, state
(and lost events once the endpoint reports them).
On a terminal the lines are redrawn in place; otherwise a line is printed
whenever a trace's progress changes (--json: one RunningInfo object per line).
With PATHs it ends when all of them are delivered (no longer listed);
without, it watches every trace until interrupted.`,
		flags: func(fs *flag.FlagSet) { fs.Duration("interval", time.Second, "refresh period") },
	},
}

func init() {
	traceCommands[0].run = tracesStart
	traceCommands[1].run = tracesLs
	traceCommands[2].run = tracesKill
	traceCommands[3].run = tracesWatch
}

// Traces runs "lambda-endpoint traces ARGS...".
func Traces(ctx context.Context, args []string, env Env) error {
	return dispatch(ctx, "traces", tracesHelp, traceCommands, args, env)
}

func tracesStart(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() != 1 {
		return fmt.Errorf("give exactly one template id: %w", ErrUsage)
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("template id %q: want a positive integer: %w", fs.Arg(0), ErrUsage)
	}
	if flagValue(co, "lasting") == "" {
		return fmt.Errorf("--lasting is required: %w", ErrUsage)
	}
	lasting, err := parseLasting(flagValue(co, "lasting"))
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrUsage)
	}
	engine := flagValue(co, "engine")
	switch engine {
	case "", "bpftrace", "native": // "": not given, the endpoint's default
	default:
		return fmt.Errorf("--engine %q: want bpftrace or native: %w", engine, ErrUsage)
	}
	s, raw, err := c.Start(ctx, StartRequest{TraceT: strings.ToUpper(flagValue(co, "type")), TraceID: id, Lasting: lasting,
		Mode: flagValue(co, "mode"), Engine: engine})
	if err != nil {
		return err
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
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), ErrUsage)
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
		return fmt.Errorf("give the paths of the traces to kill: %w", ErrUsage)
	}
	for _, p := range fs.Args() {
		if err := c.Kill(ctx, p); err != nil {
			return err
		}
		if co.json {
			fmt.Fprintf(env.Stdout, `{"killed":%q}`+"\n", p)
		} else {
			fmt.Fprintf(env.Stdout, "killed %s\n", p)
		}
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
	w := &watcher{out: env.Stdout, json: asJSON, terminal: !asJSON && env.Terminal != nil && env.Terminal(), last: map[string]string{}, reported: map[string]bool{}}
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
			return nil
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

// watcher renders the progress lines.
type watcher struct {
	out      io.Writer
	json     bool
	terminal bool
	drawn    int               // lines drawn last time (terminal)
	last     map[string]string // path -> last line key shown
	reported map[string]bool   // paths reported gone
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
		what := "not running (or already delivered)"
		if _, shown := w.last[p]; shown {
			what = "delivered"
		}
		delete(w.last, p)
		if w.json {
			b, _ := json.Marshal(map[string]string{"filePath": p, "state": what})
			done = append(done, string(b))
		} else {
			done = append(done, p+": "+what)
		}
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
	d := r.StartedAt.Add(time.Duration(r.Lasting) * time.Second).Sub(now).Round(time.Second)
	if d < 0 || r.State == "delivering" {
		d = 0
	}
	s := int64(d / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
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
