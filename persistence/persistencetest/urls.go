package persistencetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// EnvDatabaseURL names the environment variable holding the URL of the
// PostgreSQL server tests create their databases on. The role must be
// allowed to CREATE DATABASE.
const EnvDatabaseURL = "LAMBDA_TEST_DATABASE_URL"

// DefaultDatabaseURL is used when EnvDatabaseURL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Dialect keys of URLs and subtest names of ForEach.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// adminTimeout bounds each CREATE/DROP DATABASE round.
const adminTimeout = 30 * time.Second

// dialTimeout bounds reaching a server, so a black-holed address is
// reported soon.
const dialTimeout = 5 * time.Second

// errUnreachable marks a PostgreSQL server that did not answer.
var errUnreachable = errors.New("PostgreSQL unreachable")

// SQLiteURL returns the URL of a new SQLite database file in t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "lambda-endpoint.db")
}

// PostgresURL returns the URL of a new, empty PostgreSQL database that is
// dropped when t ends. An unreachable server fails t when CI=true and
// skips it otherwise.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u, err := newPostgresDatabase(t)
	if err != nil {
		missingPostgres(t, err)
	}
	return u
}

// URLs returns one fresh, isolated database URL per dialect, keyed SQLite
// and Postgres, each cleaned up when t ends. When PostgreSQL is unreachable
// and CI is not "true", the Postgres key is absent and a loud message is
// logged; with CI=true, t fails. Prefer ForEach, which reports the missing
// server as a skipped subtest.
func URLs(t testing.TB) map[string]string {
	t.Helper()
	urls := map[string]string{SQLite: SQLiteURL(t)}
	u, err := newPostgresDatabase(t)
	switch {
	case err == nil:
		urls[Postgres] = u
	case os.Getenv("CI") == "true":
		t.Fatalf("CI=true and %v", err)
	default:
		t.Logf("!!!!! %v: testing SQLite only, PostgreSQL NOT tested !!!!!", err)
	}
	return urls
}

// ForEach runs fn once per dialect as subtests named SQLite and Postgres,
// each with a fresh database URL. The Postgres subtest is skipped (or, with
// CI=true, fails) when the server is unreachable.
func ForEach(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run(SQLite, func(t *testing.T) { fn(t, SQLiteURL(t)) })
	t.Run(Postgres, func(t *testing.T) { fn(t, PostgresURL(t)) })
}

// missingPostgres stops t for an unreachable server: a failure in CI, a
// loud skip elsewhere.
func missingPostgres(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %v", err)
	}
	t.Skipf("!!!!! SKIPPING PostgreSQL test: %v. Start PostgreSQL or set %s; with CI=true this fails !!!!!", err, EnvDatabaseURL)
}

// baseURL is the server URL from the environment or the default.
func baseURL() string {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// newPostgresDatabase creates lambda_test_<random> and registers its drop.
// A server that does not answer gives an error wrapping errUnreachable; a
// malformed URL or a refused CREATE DATABASE fails t.
func newPostgresDatabase(t testing.TB) (string, error) {
	t.Helper()
	base := baseURL()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvDatabaseURL, err)
	}
	admin, err := openAdmin(base)
	if err != nil {
		t.Fatalf("parsing %s %s: %v", EnvDatabaseURL, u.Redacted(), err)
	}
	defer admin.Close()

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		return "", fmt.Errorf("%w at %s: %v", errUnreachable, u.Redacted(), err)
	}

	name := "lambda_test_" + randomHex(t, 8)
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`" TEMPLATE template0`); err != nil {
		t.Fatalf("creating test database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() { dropDatabase(t, base, name) })

	u.Path = "/" + name
	return u.String(), nil
}

// dropDatabase removes a test database, ending sessions a test left open.
func dropDatabase(t testing.TB, base, name string) {
	t.Helper()
	admin, err := openAdmin(base)
	if err != nil {
		t.Errorf("dropping test database %s: %v", name, err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		t.Errorf("dropping test database %s: %v", name, err)
	}
}

// openAdmin opens a small pool on the server's own database. pgdriver
// panics on a malformed DSN; that becomes an error.
func openAdmin(dsn string) (db *sql.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	db = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithTimeout(adminTimeout), pgdriver.WithDialTimeout(dialTimeout)))
	db.SetMaxOpenConns(1)
	return db, nil
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("reading random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}
