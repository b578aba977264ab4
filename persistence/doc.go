// Package persistence is lambda-endpoint's database store: trace templates
// and the record of every started trace (runs), on PostgreSQL or SQLite.
//
// Open picks the dialect from the URL scheme (postgres://, postgresql://,
// sqlite://), brings the schema up to date with the embedded migrations and
// returns a *Store. The Store is safe for concurrent use; callers depend on
// the small Templates and Runs interfaces rather than on *Store.
//
// This package is the only one that imports bun. Everything it exports is a
// plain type: messages structs, Run, RunQuery, Cursor, and the sentinel
// errors callers branch on:
//
//   - ErrNotFound: the addressed template or run does not exist (a template
//     addressed with the wrong trace type counts as missing);
//   - ErrExists: CreateRun with a path already stored;
//   - ErrUnavailable: the database could not be reached or failed at the
//     connection level (refused, reset, timed out, locked, I/O error). The
//     HTTP layer answers 503; the pool recovers by itself once the database
//     is back, no reopen needed;
//   - ErrInvalidCursor: ParseCursor got a token it did not issue.
//
// Ownership: the Store owns its connection pool; Close releases it. Slices
// in returned values are fresh copies owned by the caller. Times are stored
// and returned in UTC with microsecond precision (PostgreSQL's), so a value
// read back equals what was written after truncation to the microsecond.
// Nil string slices are stored as JSON [] and always read back as empty,
// non-nil slices.
//
// Schema changes are SQL migrations embedded per dialect under
// migrations/pg and migrations/sqlite; both directories hold the same
// migration names. Open applies them under a guard (a PostgreSQL advisory
// lock, or an flock on "<db>-migrate.lock" beside a SQLite file) so that
// concurrent starts serialise and a crash during a migration cannot leave
// bun's lock row behind forever.
package persistence
