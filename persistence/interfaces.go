package persistence

import (
	"context"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Templates is the template store as its consumers (the HTTP layer, the
// registry) see it. *Store implements it.
type Templates interface {
	// CreateTemplate stores info and returns it with its new id.
	CreateTemplate(ctx context.Context, info messages.TemplateInfo) (messages.Template, error)
	// ListTemplates returns every template by ascending id.
	ListTemplates(ctx context.Context) ([]messages.Template, error)
	// GetTemplate returns one template or ErrNotFound.
	GetTemplate(ctx context.Context, id int64) (messages.Template, error)
	// DeleteTemplate removes template id of type t or returns ErrNotFound.
	DeleteTemplate(ctx context.Context, t messages.TraceType, id int64) error
}

// Runs is the record of started traces as its consumers (the trace actors
// and the restart recovery) see it. *Store implements it.
type Runs interface {
	// CreateRun records a newly started trace; ErrExists if its path is taken.
	CreateRun(ctx context.Context, r Run) error
	// UpdateRun overwrites the run stored under r.Path; ErrNotFound if none.
	UpdateRun(ctx context.Context, r Run) error
	// GetRun returns the run stored under path; ErrNotFound if none.
	GetRun(ctx context.Context, path string) (Run, error)
	// ListRuns pages through runs newest first.
	ListRuns(ctx context.Context, q RunQuery) ([]Run, error)
	// MaxThread returns the highest thread id ever recorded, 0 if none.
	MaxThread(ctx context.Context) (int64, error)
}
