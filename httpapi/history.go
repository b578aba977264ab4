package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// historyEntry is one run in GET /traces/history.
type historyEntry struct {
	messages.TemplateInfo
	FilePath    string     `json:"filePath"`
	TraceNo     int64      `json:"traceNo"`
	Thread      int64      `json:"thread"`
	Mode        string     `json:"mode"`
	Engine      string     `json:"engine,omitempty"` // as in RunningInfo: bpftrace or native; none for STAP
	StartedAt   time.Time  `json:"startedAt"`
	Lasting     int64      `json:"lasting"`
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	Code        *int       `json:"code,omitempty"`
	BytesRead   int64      `json:"bytesRead"`
	ChunksAcked int64      `json:"chunksAcknowledged"`
	SHA256      string     `json:"sha256,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	// StderrTail is the end (StderrTailBytes) of the tracer's stderr, for
	// runs this endpoint process saw finish (Options.Finished): the
	// database does not keep stderr.
	StderrTail *string `json:"stderrTail,omitempty"`
}

type historyPage struct {
	Runs []historyEntry `json:"runs"`
	// Next is the cursor of the following page (?before=Next), empty on the
	// last page.
	Next string `json:"next,omitempty"`
}

// history lists recent runs, newest first: ?limit=N (1..500, default 50),
// ?before=CURSOR (the previous page's next), ?state=finished,interrupted;
// or ?path=P: the run of the trace P (a path has one run), none if unknown.
func (s *Server) history(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if s.opts.Runs == nil {
		writeError(w, http.StatusNotFound, "run history is not kept by this endpoint")
		return
	}
	q := r.URL.Query()
	var rq persistence.RunQuery
	path, byPath := q.Get("path"), q.Has("path")
	switch {
	case byPath && path == "":
		s.writeFailure(w, r, badRequest("path: empty (give a trace's filePath)"))
		return
	case byPath && q.Has("before"):
		s.writeFailure(w, r, badRequest("before: not with path (a path has one run)"))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > persistence.MaxRunLimit {
			s.writeFailure(w, r, badRequest("limit: must be an integer from 1 to %d", persistence.MaxRunLimit))
			return
		}
		rq.Limit = n
	}
	if v := q.Get("before"); v != "" {
		c, err := persistence.ParseCursor(v)
		if err != nil {
			s.writeFailure(w, r, badRequest("before: not a cursor (use a previous page's next)"))
			return
		}
		rq.Before = &c
	}
	if v := q.Get("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			switch st {
			case persistence.RunRunning, persistence.RunDelivering, persistence.RunFinished, persistence.RunInterrupted:
				rq.States = append(rq.States, st)
			default:
				s.writeFailure(w, r, badRequest("state: unknown state %q", st))
				return
			}
		}
	}
	limit := rq.Limit
	if limit == 0 {
		limit = persistence.DefaultRunLimit
	}
	var runs []persistence.Run
	var err error
	if byPath {
		if runs, err = s.runOf(r, path, rq.States); err != nil {
			err = fmt.Errorf("reading run history: %w", err)
		}
	} else if runs, err = s.opts.Runs.ListRuns(r.Context(), rq); err != nil {
		err = fmt.Errorf("listing runs: %w", err)
	}
	if err != nil {
		s.writeFailure(w, r, err)
		return
	}
	page := historyPage{Runs: make([]historyEntry, 0, len(runs))}
	for _, run := range runs {
		e := historyEntry{
			TemplateInfo: run.Info, FilePath: run.Path, TraceNo: run.TemplateID, Thread: run.Thread,
			Mode: string(run.Mode), Engine: string(run.Engine), StartedAt: run.StartedAt, Lasting: run.Lasting, State: run.State,
			Reason: run.Reason, Code: run.ExitCode, BytesRead: run.BytesRead, ChunksAcked: run.ChunksAcked,
			SHA256: run.SHA256, FinishedAt: run.FinishedAt,
		}
		if t, ok := s.opts.Finished.StderrTail(run.Path); ok {
			e.StderrTail = &t
		}
		page.Runs = append(page.Runs, e)
	}
	if !byPath && len(runs) == limit {
		// A full page: next only when an older run exists (one row more
		// read), so that the last page has none.
		c := persistence.CursorOf(runs[len(runs)-1])
		probe := persistence.RunQuery{Limit: 1, States: rq.States, Before: &c}
		more, err := s.opts.Runs.ListRuns(r.Context(), probe)
		if err != nil {
			s.writeFailure(w, r, fmt.Errorf("listing runs: %w", err))
			return
		}
		if len(more) > 0 {
			page.Next = c.String()
		}
	}
	writeJSON(w, http.StatusOK, page)
}

// runOf is the run of path as a list of none or one, kept only if its
// state is among states (all when empty).
func (s *Server) runOf(r *http.Request, path string, states []string) ([]persistence.Run, error) {
	run, err := s.opts.Runs.GetRun(r.Context(), path)
	if errors.Is(err, persistence.ErrNotFound) {
		return []persistence.Run{}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(states) > 0 && !slices.Contains(states, run.State) {
		return []persistence.Run{}, nil
	}
	return []persistence.Run{run}, nil
}
