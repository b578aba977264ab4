package persistence

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/uptrace/bun"
)

// Dialect names returned by Store.Dialect.
const (
	DialectPostgres = "pg"
	DialectSQLite   = "sqlite"
)

// Store is the database behind lambda-endpoint: templates and runs. It is
// safe for concurrent use. Create it with Open and release it with Close.
type Store struct {
	db      *bun.DB
	dialect string
}

// Compile-time checks that Store serves both consumer interfaces.
var (
	_ Templates = (*Store)(nil)
	_ Runs      = (*Store)(nil)
)

// Open connects to the database named by rawURL, checks the connection and
// applies pending migrations. The scheme picks the dialect:
//
//   - postgres://... or postgresql://...: PostgreSQL (pgdriver DSN syntax,
//     e.g. postgres://user:pass@host:5432/db?sslmode=disable);
//   - sqlite://rel/path.db (relative to the working directory),
//     sqlite:///abs/path.db, or sqlite://:memory: (private to this Store).
//     The parent directory of a file is created if missing.
//
// While another process migrates the same database, Open waits for it
// (bounded by ctx). A connection failure wraps ErrUnavailable, so a caller
// may retry; a bad URL or a failed migration does not.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	s, guard, err := newStore(rawURL)
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", redact(rawURL), err)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("opening database %s: %w", redact(rawURL), err)
	}
	if err := migrateUp(ctx, s.db, s.dialect, guard); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("opening database %s: %w", redact(rawURL), err)
	}
	return s, nil
}

// newStore builds the Store for rawURL and the guard its migrations run
// under, without touching the database.
func newStore(rawURL string) (*Store, migrationGuard, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return openPostgres(rawURL)
	case "sqlite":
		return openSQLite(rawURL)
	}
	if !ok || strings.ContainsAny(scheme, ":@/") {
		return nil, nil, errors.New("missing scheme (want postgres://, postgresql:// or sqlite://)")
	}
	return nil, nil, fmt.Errorf("unsupported scheme %q (want postgres://, postgresql:// or sqlite://)", scheme)
}

// Close releases the connection pool. Calls after Close fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing database: %w", err)
	}
	return nil
}

// Ping checks that the database answers. It may wrap ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging database: %w", classify(err))
	}
	return nil
}

// Dialect returns DialectPostgres ("pg") or DialectSQLite ("sqlite").
func (s *Store) Dialect() string {
	return s.dialect
}

// redact hides the password of a database URL for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		if strings.Contains(rawURL, "@") {
			return "(unparsable URL)" // it may hold a password: do not echo it
		}
		return rawURL
	}
	return u.Redacted()
}
