package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// templateRow is a row of the templates table. The []string fields are
// stored as JSON (jsonb on PostgreSQL, text on SQLite); they are never nil
// when written, so the column always holds an array.
type templateRow struct {
	bun.BaseModel `bun:"table:templates"`

	ID          int64     `bun:"id,pk,autoincrement"`
	Type        string    `bun:"type"`
	Process     string    `bun:"process"`
	Functions   []string  `bun:"functions"`
	Environment []string  `bun:"environment"`
	Value       []string  `bun:"value"`
	Options     []string  `bun:"options"`
	CreatedAt   time.Time `bun:"created_at"`
}

// newTemplateRow converts info into a row created at now.
func newTemplateRow(info messages.TemplateInfo, now time.Time) templateRow {
	return templateRow{
		Type:        string(info.TraceType),
		Process:     info.Process,
		Functions:   cloneStrings(info.Functions),
		Environment: cloneStrings(info.Environment),
		Value:       cloneStrings(info.Value),
		Options:     cloneStrings(info.Options),
		CreatedAt:   dbTime(now),
	}
}

// template converts the row into the shared message struct.
func (r templateRow) template() messages.Template {
	return messages.Template{
		ID: r.ID,
		Info: messages.TemplateInfo{
			Process:     r.Process,
			Functions:   cloneStrings(r.Functions),
			Environment: cloneStrings(r.Environment),
			Value:       cloneStrings(r.Value),
			Options:     cloneStrings(r.Options),
			TraceType:   messages.TraceType(r.Type),
		},
		CreatedAt: r.CreatedAt.UTC(),
	}
}

// CreateTemplate stores info and returns it with its new id and creation
// time. Nil lists are stored as empty ones. A TraceType other than BPF or
// STAP is refused by the schema. It may wrap ErrUnavailable.
func (s *Store) CreateTemplate(ctx context.Context, info messages.TemplateInfo) (messages.Template, error) {
	t, err := insertTemplate(ctx, s.db, info, time.Now())
	if err != nil {
		return messages.Template{}, fmt.Errorf("creating template: %w", classify(err))
	}
	return t, nil
}

// ListTemplates returns every template by ascending id; an empty store
// gives an empty, non-nil slice. It may wrap ErrUnavailable.
func (s *Store) ListTemplates(ctx context.Context) ([]messages.Template, error) {
	ts, err := selectTemplates(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", classify(err))
	}
	return ts, nil
}

// GetTemplate returns template id. It may wrap ErrNotFound or
// ErrUnavailable.
func (s *Store) GetTemplate(ctx context.Context, id int64) (messages.Template, error) {
	t, err := selectTemplate(ctx, s.db, id)
	if err != nil {
		return messages.Template{}, fmt.Errorf("getting template %d: %w", id, classify(err))
	}
	return t, nil
}

// DeleteTemplate removes template id if its stored type is t. A missing id
// and a type mismatch both wrap ErrNotFound (the API treats them alike). It
// may wrap ErrUnavailable.
func (s *Store) DeleteTemplate(ctx context.Context, t messages.TraceType, id int64) error {
	if err := deleteTemplate(ctx, s.db, t, id); err != nil {
		return fmt.Errorf("deleting %s template %d: %w", t, id, classify(err))
	}
	return nil
}

func insertTemplate(ctx context.Context, db bun.IDB, info messages.TemplateInfo, now time.Time) (messages.Template, error) {
	row := newTemplateRow(info, now)
	if _, err := db.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
		return messages.Template{}, err
	}
	return row.template(), nil
}

func selectTemplates(ctx context.Context, db bun.IDB) ([]messages.Template, error) {
	var rows []templateRow
	if err := db.NewSelect().Model(&rows).OrderExpr("id ASC").Scan(ctx); err != nil {
		return nil, err
	}
	ts := make([]messages.Template, 0, len(rows))
	for _, r := range rows {
		ts = append(ts, r.template())
	}
	return ts, nil
}

func selectTemplate(ctx context.Context, db bun.IDB, id int64) (messages.Template, error) {
	var row templateRow
	if err := db.NewSelect().Model(&row).Where("id = ?", id).Scan(ctx); err != nil {
		return messages.Template{}, err
	}
	return row.template(), nil
}

func deleteTemplate(ctx context.Context, db bun.IDB, t messages.TraceType, id int64) error {
	res, err := db.NewDelete().Model((*templateRow)(nil)).
		Where("id = ?", id).
		Where("type = ?", string(t)).
		Exec(ctx)
	if err != nil {
		return err
	}
	return expectOneRow(res)
}
