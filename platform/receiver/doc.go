// Package receiver is the reference platform receiver behind
// "lambda-endpoint receive": an http.Handler for PUT /submit that verifies
// every Authorization header, holds each trace to the submit protocol of
// API.md and stores what it acknowledged durably.
//
// For a trace whose path is ".../<id>.trace" it keeps, in its directory:
//
//	<id>.out   the trace's raw output: every chunk's bytes once, in order
//	<id>.idx   one 44-byte record per acknowledged chunk (offset, length,
//	           SHA-256 of its bytes), from which the next expected "no" and
//	           resends are checked
//	<id>.json  the finished message as received, written last (atomically)
//
// The protocol: "start" first (a repeat is acknowledged again); then
// chunks no 0, 1, 2, ... without gaps: a chunk resent with the bytes that
// were acknowledged is acknowledged again and not written twice, one resent
// with other bytes, a gap, or a chunk before start or after finished is
// refused with 409; then "finished", whose chunks, bytes and sha256 (when
// present) must match what was received (409 otherwise); a repeat of
// finished is acknowledged and the first one kept. Malformed messages get
// 400.
//
// Durability: a chunk's bytes are written to <id>.out and fsynced, then its
// index record is written and fsynced, and only then is 2xx answered. After
// a kill -9 the receiver rebuilds each trace from its files at first use: an
// index cut mid-record is cut to whole records, and output beyond the last
// record (written but never acknowledged) is cut off, so the sender's resend
// of that chunk is written again exactly once.
//
// Descriptors: a trace's .out and .idx stay open from its start to its
// finished message, but only for the DefaultMaxOpenTraces (or
// Options.MaxOpenTraces) most recently used traces; those of the least
// recently used idle trace beyond that are closed, its state (next chunk,
// size) stays in memory, and its next message reopens them, checking they
// are still the same files, and writes on at its end. Any number of
// unfinished traces is received with a bounded number of descriptors.
//
// Safety of the directory: New refuses a directory of another user or one
// its group or others may write (ErrUnsafeDir), and keeps it open: every
// file is opened relative to that descriptor with O_NOFOLLOW, so a symbolic
// link planted there is an error, never followed, and only regular files of
// the receiver's user with a single link are written (ErrUnsafeFile
// otherwise). Files are created with O_EXCL; a start finding a trace's file
// already there takes it over only when it is empty (what a receiver killed
// between creating .out and .idx leaves), and refuses anything else,
// leaving it as it is. Nothing is ever opened with O_TRUNC: the only cuts
// are the repairs above, of files whose .idx shows start created them, and
// the old PID in DIR/lock. A start repeated for a trace already started
// (the sender's resend or its restart) is the same trace: acknowledged,
// nothing recreated.
//
// The Receiver owns its directory; run one receiver per directory: Lock
// takes an exclusive flock on DIR/lock, opened like the trace files, and
// reuses a lock file already there only when it holds nothing but a PID.
package receiver
