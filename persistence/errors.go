package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound reports that the addressed template or run does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable reports a connection-level failure: the database
	// refused or dropped the connection, timed out, was locked or failed
	// with an I/O error. The request may succeed later without any change
	// on the caller's side.
	ErrUnavailable = errors.New("database unavailable")
	// ErrExists reports an insert whose key is already stored.
	ErrExists = errors.New("already exists")
)

// classify maps a driver error onto the package's sentinels: sql.ErrNoRows
// becomes ErrNotFound, connection-level failures are wrapped with
// ErrUnavailable and unique-key violations with ErrExists (both keep the
// original error in the chain). Anything else is returned unchanged.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnavailable), errors.Is(err, ErrExists):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case isDuplicate(err):
		return fmt.Errorf("%w: %w", ErrExists, err)
	default:
		return err
	}
}

// isUnavailable reports whether err is a connection-level failure rather
// than a problem with the statement or the data.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; the database may be fine.
		return false
	}
	for _, target := range []error{
		driver.ErrBadConn, sql.ErrConnDone, context.DeadlineExceeded,
		io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgUnavailable(pgErr)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return sqliteUnavailable(liteErr.Code())
	}
	return false
}

// pgUnavailable reports whether a PostgreSQL error response means the
// server cannot serve us right now.
func pgUnavailable(e pgdriver.Error) bool {
	switch s := e.Field('V'); s {
	case "FATAL", "PANIC":
		if strings.HasPrefix(e.Field('C'), "28") { // invalid authorization: configuration, not outage
			return false
		}
		if e.Field('C') == "3D000" { // database does not exist
			return false
		}
		return true
	}
	code := e.Field('C')
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case code == "57P01", code == "57P02", code == "57P03": // admin/crash shutdown, cannot connect now
		return true
	case code == "53000", code == "53100", code == "53200", code == "53300": // insufficient resources
		return true
	}
	return false
}

// sqliteUnavailable reports whether a SQLite result code (extended codes
// included) means the file is temporarily unusable.
func sqliteUnavailable(code int) bool {
	switch code & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}

// isDuplicate reports whether err is a primary-key or unique violation.
func isDuplicate(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}
