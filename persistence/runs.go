package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Run states. Running and delivering equal the messages.State* values of
// the same name; a run still in one of them after a restart is owed to the
// platform.
const (
	RunRunning     = messages.StateRunning    // the tracer is running
	RunDelivering  = messages.StateDelivering // tracer gone, output still being submitted
	RunFinished    = "finished"               // the finished message was acknowledged
	RunInterrupted = "interrupted"            // the endpoint died while the run was open
)

// Page sizes of ListRuns.
const (
	DefaultRunLimit = 50  // RunQuery.Limit <= 0
	MaxRunLimit     = 500 // larger limits are clamped to this
)

// Run is the durable record of one started trace: what ran, how far its
// delivery to the platform got, and how it ended. It is how the endpoint
// knows after a restart what it still owes the platform.
type Run struct {
	Path        string                // filePath of the trace; the key
	TemplateID  int64                 // traceNo of the template it ran
	Type        messages.TraceType    // tracer type
	Info        messages.TemplateInfo // snapshot of the template at start
	Mode        messages.Mode         // script mode
	Engine      messages.Engine       // what ran a BPF run (see runEngine); "" for STAP
	Thread      int64                 // thread id issued at start
	StartedAt   time.Time             // when the trace started
	Lasting     int64                 // requested duration, seconds
	State       string                // RunRunning, RunDelivering, RunFinished or RunInterrupted
	ExitCode    *int                  // tracer exit code once known
	Reason      string                // why the trace ended (messages.Reason*)
	BytesRead   int64                 // tracer stdout bytes read so far
	ChunksSent  int64                 // chunks handed to the platform client
	ChunksAcked int64                 // chunks the platform acknowledged
	SHA256      string                // hex digest of the stdout delivered so far
	FinishedAt  *time.Time            // when the finished message was acknowledged
}

// RunQuery selects a page of ListRuns.
type RunQuery struct {
	// Limit is the page size: <= 0 means DefaultRunLimit, more than
	// MaxRunLimit is clamped.
	Limit int
	// States keeps only runs in one of these states; empty keeps all.
	States []string
	// Before continues a listing: only runs that come after this position
	// in the newest-first order (that is, older ones). Nil starts at the
	// newest run. Take it from the last run of the previous page with
	// CursorOf.
	Before *Cursor
}

// runRow is a row of the runs table.
type runRow struct {
	bun.BaseModel `bun:"table:runs"`

	Path        string                `bun:"path,pk"`
	TemplateID  int64                 `bun:"template_id"`
	Type        string                `bun:"type"`
	Info        messages.TemplateInfo `bun:"info"`
	Mode        string                `bun:"mode"`
	Engine      string                `bun:"engine"`
	Thread      int64                 `bun:"thread"`
	StartedAt   time.Time             `bun:"started_at"`
	Lasting     int64                 `bun:"lasting"`
	State       string                `bun:"state"`
	ExitCode    *int                  `bun:"exit_code"`
	Reason      string                `bun:"reason"`
	BytesRead   int64                 `bun:"bytes_read"`
	ChunksSent  int64                 `bun:"chunks_sent"`
	ChunksAcked int64                 `bun:"chunks_acked"`
	SHA256      string                `bun:"sha256"`
	FinishedAt  *time.Time            `bun:"finished_at"`
}

// newRunRow converts r for storage: times normalised, lists non-nil.
func newRunRow(r Run) runRow {
	return runRow{
		Path:        r.Path,
		TemplateID:  r.TemplateID,
		Type:        string(r.Type),
		Info:        cloneInfo(r.Info),
		Mode:        string(r.Mode),
		Engine:      string(r.Engine),
		Thread:      r.Thread,
		StartedAt:   dbTime(r.StartedAt),
		Lasting:     r.Lasting,
		State:       r.State,
		ExitCode:    cloneInt(r.ExitCode),
		Reason:      r.Reason,
		BytesRead:   r.BytesRead,
		ChunksSent:  r.ChunksSent,
		ChunksAcked: r.ChunksAcked,
		SHA256:      r.SHA256,
		FinishedAt:  dbTimePtr(r.FinishedAt),
	}
}

// run converts the row back.
func (r runRow) run() Run {
	return Run{
		Path:        r.Path,
		TemplateID:  r.TemplateID,
		Type:        messages.TraceType(r.Type),
		Info:        cloneInfo(r.Info),
		Mode:        messages.Mode(r.Mode),
		Engine:      runEngine(messages.TraceType(r.Type), messages.Engine(r.Engine)),
		Thread:      r.Thread,
		StartedAt:   r.StartedAt.UTC(),
		Lasting:     r.Lasting,
		State:       r.State,
		ExitCode:    cloneInt(r.ExitCode),
		Reason:      r.Reason,
		BytesRead:   r.BytesRead,
		ChunksSent:  r.ChunksSent,
		ChunksAcked: r.ChunksAcked,
		SHA256:      r.SHA256,
		FinishedAt:  utcPtr(r.FinishedAt),
	}
}

// runEngine is the engine of a stored run: as recorded, but bpftrace for a
// BPF run with none recorded (rows written before the engine column
// existed, when bpftrace ran every BPF trace). A STAP run has none.
func runEngine(typ messages.TraceType, e messages.Engine) messages.Engine {
	if e == "" && typ == messages.BPF {
		return messages.EngineBPFtrace
	}
	return e
}

// CreateRun records a newly started trace. It may wrap ErrExists (the path
// is already recorded) or ErrUnavailable.
func (s *Store) CreateRun(ctx context.Context, r Run) error {
	if err := insertRun(ctx, s.db, r); err != nil {
		return fmt.Errorf("creating run %s: %w", r.Path, classify(err))
	}
	return nil
}

// UpdateRun overwrites every field of the run stored under r.Path. It may
// wrap ErrNotFound or ErrUnavailable.
func (s *Store) UpdateRun(ctx context.Context, r Run) error {
	if err := updateRun(ctx, s.db, r); err != nil {
		return fmt.Errorf("updating run %s: %w", r.Path, classify(err))
	}
	return nil
}

// GetRun returns the run stored under path. It may wrap ErrNotFound or
// ErrUnavailable.
func (s *Store) GetRun(ctx context.Context, path string) (Run, error) {
	r, err := selectRun(ctx, s.db, path)
	if err != nil {
		return Run{}, fmt.Errorf("getting run %s: %w", path, classify(err))
	}
	return r, nil
}

// ListRuns returns one page of runs, newest first: by StartedAt, then
// Thread, then Path, all descending. An empty page is an empty, non-nil
// slice. It may wrap ErrUnavailable.
func (s *Store) ListRuns(ctx context.Context, q RunQuery) ([]Run, error) {
	rs, err := selectRuns(ctx, s.db, q)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", classify(err))
	}
	return rs, nil
}

// MaxThread returns the highest thread id ever recorded, or 0 when no run
// is recorded, so that thread ids keep increasing across restarts. It may
// wrap ErrUnavailable.
func (s *Store) MaxThread(ctx context.Context) (int64, error) {
	n, err := selectMaxThread(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("reading highest thread: %w", classify(err))
	}
	return n, nil
}

func insertRun(ctx context.Context, db bun.IDB, r Run) error {
	row := newRunRow(r)
	_, err := db.NewInsert().Model(&row).Exec(ctx)
	return err
}

func updateRun(ctx context.Context, db bun.IDB, r Run) error {
	row := newRunRow(r)
	res, err := db.NewUpdate().Model(&row).ExcludeColumn("path").WherePK().Exec(ctx)
	if err != nil {
		return err
	}
	return expectOneRow(res)
}

func selectRun(ctx context.Context, db bun.IDB, path string) (Run, error) {
	if strings.IndexByte(path, 0) >= 0 {
		// No trace path holds a NUL, and SQLite matches a path with a
		// trailing NUL to the path without it: another run.
		return Run{}, sql.ErrNoRows
	}
	var row runRow
	if err := db.NewSelect().Model(&row).Where("path = ?", path).Scan(ctx); err != nil {
		return Run{}, err
	}
	return row.run(), nil
}

func selectRuns(ctx context.Context, db bun.IDB, q RunQuery) ([]Run, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultRunLimit
	case limit > MaxRunLimit:
		limit = MaxRunLimit
	}
	var rows []runRow
	sel := db.NewSelect().Model(&rows).
		OrderExpr("started_at DESC, thread DESC, path DESC").
		Limit(limit)
	if len(q.States) > 0 {
		sel = sel.Where("state IN (?)", bun.In(q.States))
	}
	if c := q.Before; c != nil {
		// Row-value comparison, understood by PostgreSQL and SQLite alike;
		// on SQLite started_at is text whose order is chronological.
		sel = sel.Where("(started_at, thread, path) < (?, ?, ?)", dbTime(c.StartedAt), c.Thread, c.Path)
	}
	if err := sel.Scan(ctx); err != nil {
		return nil, err
	}
	rs := make([]Run, 0, len(rows))
	for _, r := range rows {
		rs = append(rs, r.run())
	}
	return rs, nil
}

func selectMaxThread(ctx context.Context, db bun.IDB) (int64, error) {
	var n int64
	err := db.NewSelect().Model((*runRow)(nil)).
		ColumnExpr("COALESCE(MAX(thread), 0)").
		Scan(ctx, &n)
	return n, err
}

// cloneInfo copies a TemplateInfo with fresh, non-nil lists.
func cloneInfo(info messages.TemplateInfo) messages.TemplateInfo {
	info.Functions = cloneStrings(info.Functions)
	info.Environment = cloneStrings(info.Environment)
	info.Value = cloneStrings(info.Value)
	info.Options = cloneStrings(info.Options)
	return info
}

// cloneInt copies an optional int.
func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
