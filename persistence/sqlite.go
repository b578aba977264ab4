package persistence

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// sqliteMemory is the path that names a private in-memory database.
const sqliteMemory = ":memory:"

// sqlitePragmas is applied by the driver to every new connection:
// busy_timeout lets another process's short write finish instead of
// failing with "database is locked"; WAL lets readers (an operator's
// sqlite3 shell) proceed during writes; foreign_keys is off by default in
// SQLite. _txlock=immediate makes transactions take the write lock up front
// so two writers never deadlock upgrading a read lock.
// sqlitePragmas apply to every connection. WAL is not among them: it is a
// property of the database file, set once under the migration guard (see
// runMigrations), because switching a fresh file to WAL from several
// processes at once can fail with SQLITE_BUSY without waiting.
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"

// openSQLite builds a Store on a sqlite:// URL. The pool holds exactly one
// connection: SQLite has one writer at a time, and serialising in
// database/sql (which waits) instead of in SQLite (which answers
// SQLITE_BUSY) is what keeps concurrent requests from seeing "database is
// locked". For :memory: the single long-lived connection also is the
// database.
func openSQLite(rawURL string) (*Store, migrationGuard, error) {
	path, err := sqlitePath(rawURL)
	if err != nil {
		return nil, nil, err
	}
	var guard migrationGuard = noGuard{}
	if path != sqliteMemory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating database directory: %w", err)
		}
		if err := createPrivate(path); err != nil {
			return nil, nil, err
		}
		guard = fileGuard{path: path + "-migrate.lock"}
	}
	sqldb, err := sql.Open("sqlite", path+"?"+sqlitePragmas)
	if err != nil {
		return nil, nil, err
	}
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	return &Store{db: db, dialect: DialectSQLite}, guard, nil
}

// sqlitePath extracts the file path from sqlite://rel/path.db,
// sqlite:///abs/path.db or sqlite://:memory:. Relative paths are made
// absolute against the working directory at Open.
func sqlitePath(rawURL string) (string, error) {
	_, rest, ok := strings.Cut(rawURL, "://")
	switch {
	case !ok || rest == "":
		return "", errors.New("sqlite URL needs a path: sqlite://file.db, sqlite:///abs/file.db or sqlite://:memory:")
	case strings.ContainsAny(rest, "?#"):
		return "", errors.New("sqlite URL takes no query or fragment")
	case strings.ContainsRune(rest, 0):
		return "", errors.New("sqlite URL contains NUL")
	case rest == sqliteMemory:
		return sqliteMemory, nil
	case strings.HasSuffix(rest, "/"):
		return "", fmt.Errorf("sqlite path %q names a directory", rest)
	}
	abs, err := filepath.Abs(rest)
	if err != nil {
		return "", fmt.Errorf("resolving sqlite path %q: %w", rest, err)
	}
	return abs, nil
}

// createPrivate creates the database file with mode 0600 before SQLite opens
// it (SQLite would create it 0644 under the usual umask: templates readable
// by every local user). SQLite gives the -wal and -shm files it creates
// later the mode of the database file, so they are private too. An existing
// file keeps its mode: the operator chose it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database file: %w", err)
	}
	return f.Close()
}
