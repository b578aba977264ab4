package persistence

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// migrationFiles holds the schema, one directory per dialect
// (migrations/pg, migrations/sqlite) with the same migration names in each.
// The SQL is written per dialect rather than generated from Go models so
// that every migration is frozen text (a later change to a model cannot
// rewrite history) and can use what bun's CreateTable cannot express:
// CHECK constraints, jsonb, STRICT tables, AUTOINCREMENT ids that are
// never reused after a delete.
//
//go:embed migrations
var migrationFiles embed.FS

// unlockTimeout bounds the cleanup after a migration run, which must happen
// even when the caller's context is already done.
const unlockTimeout = 10 * time.Second

// dialectMigrations returns the embedded migrations of one dialect.
func dialectMigrations(dialect string) (fs.FS, error) {
	return fs.Sub(migrationFiles, "migrations/"+dialect)
}

// migrateUp applies the dialect's embedded migrations.
func migrateUp(ctx context.Context, db *bun.DB, dialect string, guard migrationGuard) error {
	fsys, err := dialectMigrations(dialect)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return runMigrations(ctx, db, fsys, guard)
}

// runMigrations applies the migrations found in fsys: Init, Lock, Migrate
// (marking a migration applied only after it succeeded, so a failed one is
// retried at the next start), Unlock.
//
// bun's Lock is a row in bun_migration_locks, not a lock the database
// releases when a process dies: after a crash between Lock and Unlock it
// would refuse every later start. So the sequence runs under guard, which
// the database or the kernel does release on death; while the guard is held
// no other migrator can be running, and a lock row found then is stale and
// cleared with Unlock before Lock.
func runMigrations(ctx context.Context, db *bun.DB, fsys fs.FS, guard migrationGuard) (err error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return fmt.Errorf("discovering migrations: %w", err)
	}
	m := migrate.NewMigrator(db, ms, migrate.WithMarkAppliedOnSuccess(true))

	release, err := guard.acquire(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the migration guard: %w", classify(err))
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = fmt.Errorf("releasing the migration guard: %w", classify(rerr))
		}
	}()

	if db.Dialect().Name() == dialect.SQLite {
		// Write-ahead logging lets readers proceed while a write commits;
		// it sticks to the file, so setting it once here is enough.
		if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			return fmt.Errorf("enabling write-ahead logging: %w", classify(err))
		}
	}
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("initialising migration tables: %w", classify(err))
	}
	if err := m.Unlock(ctx); err != nil { // clear a stale lock, see above
		return fmt.Errorf("clearing stale migration lock: %w", classify(err))
	}
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("locking migrations: %w", classify(err))
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		if uerr := m.Unlock(uctx); uerr != nil && err == nil {
			err = fmt.Errorf("unlocking migrations: %w", classify(uerr))
		}
	}()

	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("applying migrations: %w", classify(err))
	}
	return nil
}
