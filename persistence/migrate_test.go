package persistence

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun"
)

// appliedMigrations returns the names bun recorded as applied.
func appliedMigrations(t *testing.T, db *bun.DB) []string {
	t.Helper()
	var names []string
	if err := db.NewSelect().TableExpr("bun_migrations").Column("name").OrderExpr("name").Scan(testContext(t), &names); err != nil {
		t.Fatalf("reading bun_migrations: %v", err)
	}
	return names
}

// migrationLocks counts rows in bun's lock table.
func migrationLocks(t *testing.T, db *bun.DB) int {
	t.Helper()
	n, err := db.NewSelect().TableExpr("bun_migration_locks").Count(testContext(t))
	if err != nil {
		t.Fatalf("counting migration locks: %v", err)
	}
	return n
}

// guardFor returns the migration guard Open uses for url, as another
// process would hold it.
func guardFor(t *testing.T, url string) migrationGuard {
	t.Helper()
	other, guard, err := newStore(url)
	if err != nil {
		t.Fatalf("newStore(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return guard
}

// tableExists reports whether a table of that name exists.
func tableExists(t *testing.T, s *Store, name string) bool {
	t.Helper()
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if s.Dialect() == DialectPostgres {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
	}
	var n int
	if err := s.db.QueryRowContext(testContext(t), q, name).Scan(&n); err != nil {
		t.Fatalf("looking for table %s: %v", name, err)
	}
	return n == 1
}

func TestMigrationsMatchAcrossDialects(t *testing.T) {
	names := func(dialect string) []string {
		fsys, err := dialectMigrations(dialect)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	pg, lite := names(DialectPostgres), names(DialectSQLite)
	if len(pg) == 0 {
		t.Fatal("no migrations embedded")
	}
	mustEqual(t, "migration files of sqlite vs pg", lite, pg)
}

func TestOpenTwiceIsIdempotent(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		ctx := testContext(t)
		first := openStore(t, url)
		tpl, err := first.CreateTemplate(ctx, bpfInfo("/bin/bash", "main"))
		if err != nil {
			t.Fatalf("CreateTemplate: %v", err)
		}
		applied := appliedMigrations(t, first.db)
		if len(applied) == 0 {
			t.Fatal("no migration recorded as applied")
		}

		// A second Store on the same database, while the first is open,
		// then a third after both closed.
		second := openStore(t, url)
		mustEqual(t, "applied migrations after a second Open", appliedMigrations(t, second.db), applied)
		if got, err := second.GetTemplate(ctx, tpl.ID); err != nil || got.ID != tpl.ID {
			t.Fatalf("second Store GetTemplate = %+v, %v", got, err)
		}
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		third := openStore(t, url)
		mustEqual(t, "applied migrations after a third Open", appliedMigrations(t, third.db), applied)
		if migrationLocks(t, third.db) != 0 {
			t.Fatal("a migration lock row was left behind")
		}
	})
}

func TestConcurrentOpen(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		const n = 4
		errs := make(chan error, n)
		for range n {
			go func() {
				s, err := Open(testContext(t), url)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent Open: %v", err)
			}
		}
		s := openStore(t, url)
		applied := appliedMigrations(t, s.db)
		if len(applied) != len(slices.Compact(slices.Clone(applied))) {
			t.Fatalf("migrations applied more than once: %v", applied)
		}
	})
}

func TestFailingMigrationIsNotMarkedApplied(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		ctx := testContext(t)
		s := openStore(t, url)
		guard := guardFor(t, url)
		// The second file creates a table, then fails: the table must be
		// rolled back with it and the migration left unapplied.
		broken := fstest.MapFS{
			"29990101000001_extra_ok.tx.up.sql":  {Data: []byte("CREATE TABLE extra_ok (id integer);\n")},
			"29990101000002_extra_bad.tx.up.sql": {Data: []byte("CREATE TABLE extra_bad (id integer);\nSELECT * FROM no_such_table;\n")},
		}
		if err := runMigrations(ctx, s.db, broken, guard); err == nil {
			t.Fatal("runMigrations with a broken migration succeeded")
		}
		applied := appliedMigrations(t, s.db)
		if !slices.Contains(applied, "29990101000001") {
			t.Fatalf("the good migration is not recorded: %v", applied)
		}
		if slices.Contains(applied, "29990101000002") {
			t.Fatalf("the failed migration is recorded as applied: %v", applied)
		}
		if !tableExists(t, s, "extra_ok") || tableExists(t, s, "extra_bad") {
			t.Fatalf("extra_ok exists: %v, extra_bad exists: %v; want true, false",
				tableExists(t, s, "extra_ok"), tableExists(t, s, "extra_bad"))
		}
		if n := migrationLocks(t, s.db); n != 0 {
			t.Fatalf("%d lock rows left after a failed run", n)
		}

		// Fixed, it applies at the next run.
		broken["29990101000002_extra_bad.tx.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE extra_bad (id integer);\n")}
		if err := runMigrations(ctx, s.db, broken, guard); err != nil {
			t.Fatalf("runMigrations after the fix: %v", err)
		}
		if !slices.Contains(appliedMigrations(t, s.db), "29990101000002") || !tableExists(t, s, "extra_bad") {
			t.Fatal("the fixed migration was not applied")
		}
	})
}

func TestStaleMigrationLockIsCleared(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		ctx := testContext(t)
		s := openStore(t, url)
		// What a process killed between Lock and Unlock leaves behind.
		if _, err := s.db.ExecContext(ctx, "INSERT INTO bun_migration_locks (table_name) VALUES (?)", "bun_migrations"); err != nil {
			t.Fatalf("planting a stale lock: %v", err)
		}
		if migrationLocks(t, s.db) != 1 {
			t.Fatal("stale lock not planted")
		}
		again := openStore(t, url)
		if n := migrationLocks(t, again.db); n != 0 {
			t.Fatalf("%d lock rows after Open, want the stale one cleared", n)
		}
	})
}

func TestOpenWaitsForMigrationGuard(t *testing.T) {
	forEachURL(t, func(t *testing.T, url string) {
		openStore(t, url)
		guard := guardFor(t, url)
		release, err := guard.acquire(testContext(t))
		if err != nil {
			t.Fatalf("acquiring the guard: %v", err)
		}
		// Another migrator holds the guard: Open must wait, here until its
		// context ends.
		ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
		defer cancel()
		if blocked, err := Open(ctx, url); err == nil {
			_ = blocked.Close()
			t.Fatal("Open succeeded while another process held the migration guard")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Open while the guard is held = %v, want it to wait until the deadline", err)
		}
		if err := release(); err != nil {
			t.Fatalf("releasing the guard: %v", err)
		}
		openStore(t, url)
	})
}
