package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

func tracesHistory(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	limit, _ := strconv.Atoi(flagValue(co, "limit"))
	if limit < 1 || limit > maxHistoryLimit {
		return usagef("--limit %s: want 1 to %d", flagValue(co, "limit"), maxHistoryLimit)
	}
	states := splitList(flagValue(co, "state"))
	for _, st := range states {
		if !slices.Contains(historyStates, st) {
			msg := fmt.Sprintf("--state %q: want %s", st, strings.Join(historyStates, ", "))
			if m := closest(st, historyStates); m != "" {
				msg += " (did you mean " + m + "?)"
			}
			return usagef("%s", msg)
		}
	}
	h, raw, err := c.History(ctx, HistoryQuery{Limit: limit, States: states, Before: flagValue(co, "before")})
	if err != nil {
		return err
	}
	if co.json {
		return writeRaw(env.Stdout, raw)
	}
	if err := writeHistory(env.Stdout, h.Runs, env.now()); err != nil {
		return err
	}
	if h.Next != "" {
		fmt.Fprintf(env.Stderr, "more runs: --before %s\n", h.Next)
	}
	return nil
}

// writeHistory is the table of runs of traces history.
func writeHistory(w io.Writer, runs []Run, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "THREAD\tTEMPLATE\tTYPE\tMODE\tSTATE\tREASON\tCODE\tREAD\tACKED\tSTARTED\tRAN\tPATH")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d chunks\t%s\t%s\t%s\n", r.Thread, r.TraceNo, r.TraceType, dash(r.Mode),
			dash(r.State), dash(r.Reason), code(r.Code), size(r.BytesRead), r.ChunksAcknowledged, stamp(r.StartedAt), ran(r, now), r.FilePath)
	}
	return tw.Flush()
}

func tracesDescribe(ctx context.Context, c *Client, co *common, fs *flag.FlagSet, env Env) error {
	if fs.NArg() != 1 {
		return usagef("give exactly one trace path")
	}
	p := fs.Arg(0)
	h, raw, err := c.History(ctx, HistoryQuery{Path: p})
	if err != nil {
		return err
	}
	if len(h.Runs) == 0 {
		return fmt.Errorf("no run at %s", p)
	}
	if co.json {
		return writeRaw(env.Stdout, raw)
	}
	return writeRun(env.Stdout, h.Runs[0], env.now())
}

// writeRun is the report of traces describe: one "key: value" line per
// field, then the end of the tracer's stderr.
func writeRun(w io.Writer, r Run, now time.Time) error {
	tw := newTable(w)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("path", r.FilePath)
	line("thread", strconv.FormatInt(r.Thread, 10))
	line("template", fmt.Sprintf("%d (%s)", r.TraceNo, r.TraceType))
	line("process", r.Process)
	line("functions", strings.Join(r.Functions, ", "))
	var envs []string
	for i, k := range r.Environment {
		v := ""
		if i < len(r.Value) {
			v = r.Value[i]
		}
		envs = append(envs, k+"="+v)
	}
	line("environment", dash(strings.Join(envs, " ")))
	line("options", dash(strings.Join(r.Options, " ")))
	line("mode", dash(r.Mode))
	line("engine", dash(r.Engine))
	line("started", stamp(r.StartedAt))
	line("lasting", fmt.Sprintf("%d s", r.Lasting))
	if r.FinishedAt != nil {
		line("finished", fmt.Sprintf("%s (ran %s)", stamp(*r.FinishedAt), ran(r, now)))
	} else {
		line("finished", "-")
	}
	line("state", dash(r.State))
	line("reason", dash(r.Reason))
	line("exit code", code(r.Code))
	line("read", size(r.BytesRead))
	line("acknowledged", fmt.Sprintf("%d chunks", r.ChunksAcknowledged))
	line("sha256", dash(r.SHA256))
	switch {
	case r.StderrTail == nil:
		line("stderr", "unknown (the endpoint keeps it for the runs it saw finish since it started)")
	case strings.TrimSpace(*r.StderrTail) == "":
		line("stderr", "(empty)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b := stderrBlock(r.StderrTail, 0); b != "" {
		_, err := fmt.Fprintln(w, strings.TrimPrefix(b, "\n"))
		return err
	}
	return nil
}

// code is an exit code, "-" when there is none.
func code(c *int) string {
	if c == nil {
		return "-"
	}
	return strconv.Itoa(*c)
}

// stamp is t in RFC 3339, UTC, to the second; "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ran is how long the run ran: until it finished, or until now while it
// has not (m:ss or h:mm:ss).
func ran(r Run, now time.Time) string {
	if r.StartedAt.IsZero() {
		return "-"
	}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return clock(end.Sub(r.StartedAt))
}

// clock is d as m:ss or h:mm:ss, 0:00 for a negative d.
func clock(d time.Duration) string {
	s := max(int64(d.Round(time.Second)/time.Second), 0)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
