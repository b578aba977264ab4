package persistence

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Pool limits for PostgreSQL. The endpoint issues few, short queries.
const (
	pgMaxOpenConns    = 10
	pgMaxIdleConns    = 4
	pgConnMaxIdleTime = 5 * time.Minute
)

// openPostgres builds a Store on a PostgreSQL URL without touching the
// network yet.
func openPostgres(rawURL string) (s *Store, guard migrationGuard, err error) {
	connector, err := pgConnector(rawURL)
	if err != nil {
		return nil, nil, err
	}
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(pgMaxOpenConns)
	sqldb.SetMaxIdleConns(pgMaxIdleConns)
	sqldb.SetConnMaxIdleTime(pgConnMaxIdleTime)
	db := bun.NewDB(sqldb, pgdialect.New())
	return &Store{db: db, dialect: DialectPostgres}, pgAdvisoryGuard{db: db}, nil
}

// pgConnector parses the DSN; pgdriver panics on a malformed one, which is
// turned into an error here.
func pgConnector(rawURL string) (c *pgdriver.Connector, err error) {
	if _, err := url.Parse(rawURL); err != nil {
		// url.Error repeats the URL, password included: keep only the reason.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parsing PostgreSQL URL: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parsing PostgreSQL URL: %v", r)
		}
	}()
	return pgdriver.NewConnector(
		pgdriver.WithDSN(rawURL),
		pgdriver.WithResetSessionFunc(checkConnAlive),
	), nil
}

// checkConnAlive runs before a pooled connection is reused. It peeks at the
// socket without blocking or consuming anything: a connection the server
// (or a proxy) has closed while it sat idle reads as EOF, one the server is
// terminating has an unsolicited ErrorResponse ('E') queued. Either is
// reported as driver.ErrBadConn, so database/sql discards it and retries on
// a fresh connection instead of failing the caller's query. This is what
// lets the pool recover by itself after a database restart.
func checkConnAlive(_ context.Context, cn *pgdriver.Conn) error {
	nc := cn.Conn()
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return driver.ErrBadConn
	}
	alive := true
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK), errors.Is(rerr, syscall.EINTR):
			// Nothing queued: the idle connection is healthy.
		case rerr != nil, n == 0:
			alive = false // reset, or EOF
		case buf[0] == 'E':
			alive = false // FATAL before close, e.g. admin shutdown
		}
		return true // never wait for readiness
	})
	if err != nil || !alive {
		return driver.ErrBadConn
	}
	return nil
}
