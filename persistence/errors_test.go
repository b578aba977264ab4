package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	sqlite3 "modernc.org/sqlite/lib"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	plain := errors.New(`ERROR: syntax error at or near "SELEC"`)
	tests := []struct {
		name string
		err  error
		want error // sentinel the result must match; nil: the result is err itself
	}{
		{"nil", nil, nil},
		{"no rows", sql.ErrNoRows, ErrNotFound},
		{"wrapped no rows", fmt.Errorf("scanning: %w", sql.ErrNoRows), ErrNotFound},
		{"bad conn", driver.ErrBadConn, ErrUnavailable},
		{"conn done", sql.ErrConnDone, ErrUnavailable},
		{"dial refused", refused, ErrUnavailable},
		{"reset", fmt.Errorf("reading: %w", syscall.ECONNRESET), ErrUnavailable},
		{"broken pipe", syscall.EPIPE, ErrUnavailable},
		{"eof", io.EOF, ErrUnavailable},
		{"unexpected eof", io.ErrUnexpectedEOF, ErrUnavailable},
		{"deadline", context.DeadlineExceeded, ErrUnavailable},
		{"closed net conn", net.ErrClosed, ErrUnavailable},
		{"already unavailable", fmt.Errorf("%w: x", ErrUnavailable), ErrUnavailable},
		{"canceled", context.Canceled, nil},
		{"statement error", plain, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if tt.want == nil {
				if got != tt.err {
					t.Fatalf("classify(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Fatalf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if tt.want == ErrUnavailable && !errors.Is(got, tt.err) {
				t.Fatalf("classify(%v) = %v lost the original error", tt.err, got)
			}
		})
	}
}

func TestSQLiteUnavailableCodes(t *testing.T) {
	for _, tt := range []struct {
		code int
		want bool
	}{
		{sqlite3.SQLITE_BUSY, true},
		{sqlite3.SQLITE_BUSY | 2<<8, true}, // SQLITE_BUSY_TIMEOUT
		{sqlite3.SQLITE_LOCKED, true},
		{sqlite3.SQLITE_IOERR | 3<<8, true}, // SQLITE_IOERR_WRITE
		{sqlite3.SQLITE_CANTOPEN, true},
		{sqlite3.SQLITE_FULL, true},
		{sqlite3.SQLITE_CONSTRAINT_CHECK, false},
		{sqlite3.SQLITE_CONSTRAINT_UNIQUE, false},
		{sqlite3.SQLITE_ERROR, false},
		{sqlite3.SQLITE_CORRUPT, false},
	} {
		if got := sqliteUnavailable(tt.code); got != tt.want {
			t.Errorf("sqliteUnavailable(%d) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// A write lock another process holds past busy_timeout is "locked", which
// is temporary: ErrUnavailable.
func TestSQLiteLockedIsUnavailable(t *testing.T) {
	url := persistencetest.SQLiteURL(t)
	s := openStore(t, url)
	ctx := testContext(t)
	// The pool has a single connection, so this shortens the wait of the
	// one the Store uses.
	if _, err := s.db.ExecContext(ctx, "PRAGMA busy_timeout = 50"); err != nil {
		t.Fatal(err)
	}
	path, err := sqlitePath(url)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	_, err = s.CreateTemplate(ctx, bpfInfo("/bin/bash", "main"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CreateTemplate while another process holds the write lock = %v, want ErrUnavailable", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTemplate(ctx, bpfInfo("/bin/bash", "main")); err != nil {
		t.Fatalf("CreateTemplate after the lock was released: %v", err)
	}
}

// storeCalls are one call of every Store method that reaches the database,
// each of which succeeds on a store holding the template with id tplID and
// the run r.
func storeCalls(s *Store, tplID int64, r Run) []struct {
	name string
	call func(ctx context.Context) error
} {
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"ListTemplates", func(ctx context.Context) error { _, err := s.ListTemplates(ctx); return err }},
		{"GetTemplate", func(ctx context.Context) error { _, err := s.GetTemplate(ctx, tplID); return err }},
		{"CreateTemplate", func(ctx context.Context) error {
			_, err := s.CreateTemplate(ctx, bpfInfo("/bin/sh", "main"))
			return err
		}},
		{"GetRun", func(ctx context.Context) error { _, err := s.GetRun(ctx, r.Path); return err }},
		{"UpdateRun", func(ctx context.Context) error { return s.UpdateRun(ctx, r) }},
		{"ListRuns", func(ctx context.Context) error { _, err := s.ListRuns(ctx, RunQuery{}); return err }},
		{"MaxThread", func(ctx context.Context) error { _, err := s.MaxThread(ctx); return err }},
	}
}

// warmPool leaves n connections idle in the Store's pool.
func warmPool(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := testContext(t)
	var conns []*sql.Conn
	for range n {
		c, err := s.db.DB.Conn(ctx)
		if err != nil {
			t.Fatalf("warming the pool: %v", err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatalf("warming the pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestPostgresOutageAndRecovery(t *testing.T) {
	proxy := persistencetest.NewProxy(t, persistencetest.PostgresURL(t))
	s := openStore(t, proxy.URL())
	ctx := testContext(t)
	tpl, err := s.CreateTemplate(ctx, bpfInfo("/bin/bash", "main"))
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRun("/traces/outage.trace", 1, tpl.CreatedAt)
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	calls := storeCalls(s, tpl.ID, r)

	t.Run("blip", func(t *testing.T) {
		// The server goes away and comes back while the pool is idle: the
		// dead pooled connections are noticed and replaced, no call fails.
		warmPool(t, s, 3)
		proxy.Close()
		proxy.Reopen()
		for _, c := range calls {
			if err := c.call(ctx); err != nil {
				t.Fatalf("%s after the server came back: %v", c.name, err)
			}
		}
	})

	t.Run("outage", func(t *testing.T) {
		warmPool(t, s, 3)
		proxy.Close()
		for _, c := range calls {
			if err := c.call(ctx); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s while the server is unreachable = %v, want ErrUnavailable", c.name, err)
			}
		}
		if err := s.DeleteTemplate(ctx, messages.BPF, tpl.ID); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("DeleteTemplate while the server is unreachable = %v, want ErrUnavailable", err)
		}
		proxy.Reopen()
		for _, c := range calls {
			if err := c.call(ctx); err != nil {
				t.Fatalf("%s after the server came back: %v", c.name, err)
			}
		}
		if err := s.DeleteTemplate(ctx, messages.BPF, tpl.ID); err != nil {
			t.Fatalf("DeleteTemplate after the server came back: %v", err)
		}
	})
}

// PostgreSQL terminating the Store's sessions (a restart, an operator's
// pg_terminate_backend) costs no failed call.
func TestPostgresTerminatedSessions(t *testing.T) {
	url := persistencetest.PostgresURL(t)
	s := openStore(t, url)
	admin := openStore(t, url)
	ctx := testContext(t)
	warmPool(t, s, 3)
	// Collect the pids first and terminate them one by one: a filter and
	// pg_terminate_backend in one WHERE may be evaluated in any order, and
	// this server is shared with other tests.
	conn, err := admin.db.Conn(ctx) // one session, excluded below
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pids []int64
	if err := conn.NewSelect().TableExpr("pg_stat_activity").Column("pid").
		Where("datname = current_database()").
		Where("backend_type = 'client backend'").
		Where("pid <> pg_backend_pid()").
		Scan(ctx, &pids); err != nil {
		t.Fatalf("listing sessions: %v", err)
	}
	if len(pids) < 3 {
		t.Fatalf("found %d sessions, want at least the 3 pooled ones", len(pids))
	}
	for _, pid := range pids {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_terminate_backend(?, 10000)", pid).Scan(&ok); err != nil {
			t.Fatalf("terminating session %d: %v", pid, err)
		}
	}
	if _, err := s.ListTemplates(ctx); err != nil {
		t.Fatalf("ListTemplates after the sessions were terminated: %v", err)
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Open(testContext(t), "postgres://postgres:secret@"+addr+"/x?sslmode=disable")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open on a closed port = %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Fatalf("error %q shows the password", msg)
	}
}
