package persistence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/uptrace/bun"
)

// guardPollInterval is how often a waiting migrator retries the guard.
const guardPollInterval = 100 * time.Millisecond

// pgAdvisoryLockKey identifies lambda-endpoint's migrations among the
// advisory locks of a database ("lambdaMG" in ASCII).
const pgAdvisoryLockKey int64 = 0x6c616d6264614d47

// errGuardBusy is what a guard's try reports while another holder has it.
var errGuardBusy = errors.New("migration guard held elsewhere")

// migrationGuard serialises migration runs across processes with a lock
// that is released automatically when its holder dies.
type migrationGuard interface {
	// acquire waits until the guard is held or ctx is done. release gives
	// it back.
	acquire(ctx context.Context) (release func() error, err error)
}

// pollGuard calls try until it stops reporting errGuardBusy or ctx is done.
func pollGuard(ctx context.Context, try func() error) error {
	for {
		err := try()
		if !errors.Is(err, errGuardBusy) {
			return err
		}
		t := time.NewTimer(guardPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// noGuard is for a private :memory: database nobody else can reach.
type noGuard struct{}

func (noGuard) acquire(context.Context) (func() error, error) {
	return func() error { return nil }, nil
}

// pgAdvisoryGuard holds a session-level advisory lock on one dedicated
// connection. PostgreSQL drops it when that session ends, crash included.
// Advisory locks are per database, so stores on different databases of one
// server never wait for each other.
type pgAdvisoryGuard struct {
	db *bun.DB
}

func (g pgAdvisoryGuard) acquire(ctx context.Context) (func() error, error) {
	conn, err := g.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	err = pollGuard(ctx, func() error {
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(?)", pgAdvisoryLockKey).Scan(&got); err != nil {
			return err
		}
		if !got {
			return errGuardBusy
		}
		return nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		_, uerr := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(?)", pgAdvisoryLockKey)
		return errors.Join(uerr, conn.Close())
	}, nil
}

// fileGuard holds an exclusive flock on a small file beside a SQLite
// database. The kernel drops it when the process dies. flock and SQLite's
// own fcntl locks are independent, and the lock file is never the database.
type fileGuard struct {
	path string
}

func (g fileGuard) acquire(ctx context.Context) (func() error, error) {
	f, err := os.OpenFile(g.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	fd := int(f.Fd())
	err = pollGuard(ctx, func() error {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errGuardBusy
		case errors.Is(err, syscall.EINTR):
			return errGuardBusy
		case err != nil:
			return fmt.Errorf("locking %s: %w", g.path, err)
		}
		return nil
	})
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		return errors.Join(syscall.Flock(fd, syscall.LOCK_UN), f.Close())
	}, nil
}
