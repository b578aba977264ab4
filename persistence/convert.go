package persistence

import (
	"database/sql"
	"fmt"
	"time"
)

// dbTime is how every time is stored: UTC, truncated to the microsecond
// PostgreSQL keeps, so both dialects return exactly what was written.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// dbTimePtr is dbTime for an optional time.
func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// utcPtr returns a copy of an optional time read from the database, in UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// cloneStrings copies s into a fresh non-nil slice, so a nil list is
// stored as JSON [] and read back as an empty slice.
func cloneStrings(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}

// expectOneRow turns "no row affected" into ErrNotFound.
func expectOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("counting affected rows: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
