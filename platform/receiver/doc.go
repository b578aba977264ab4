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
// The Receiver owns its directory; run one receiver per directory.
package receiver
