// Package auth implements lambda-endpoint's argon2-based Authorization header,
// in both directions.
//
// A header value is the endpoint UUID immediately followed by a PHC-encoded
// argon2 hash of the shared secret:
//
//	4633d686-f75d-4d1f-8415-02ce37d9e5f8$argon2i$v=19$m=4096,t=3,p=1$<salt>$<hash>
//
// Outgoing: [NewOutgoing] (or [Header]) hashes the secret with a fresh random
// salt and argon2i m=4096,t=3,p=1. The value is meant to be computed once and
// reused for every request; it is a bearer credential, so [Outgoing] redacts
// itself when printed or logged.
//
// Incoming: a [Verifier] checks headers against one UUID and secret. The hash
// carries its own cost parameters, chosen by the caller, so Verify refuses
// costs outside a window before hashing anything: never weaker than the
// seed's example (m=4096, t=3: [MinMemoryKiB], [MinIterations]), never above
// its [Limits]. It bounds how many argon2 computations run at once (a
// semaphore), how long a caller waits for one (Limits.MaxWait) and how many
// callers may wait (Limits.MaxQueue; more are told busy at once), collapses
// concurrent verifications of the same header into one computation, and
// remembers verified headers (bounded LRU, expiring) so that an honest
// caller pays for argon2 once, not on every request.
//
// Memory: argon2 needs m KiB per computation. golang.org/x/crypto/argon2
// allocates it afresh on every call (its API takes no buffer), so a flood
// of maximum-cost headers turned into garbage faster than the collector
// returned it (RSS grew by hundreds of MiB). The Verifier therefore computes
// argon2 itself (argon2.go, RFC 9106, checked against x/crypto in tests)
// into buffers it keeps: one per verification slot, grown to the largest m
// seen. Hashing memory is thus at most MaxConcurrent × MaxMemoryKiB, held
// for reuse, and a flood allocates nothing more. Callers waiting for a slot
// hold nothing but their goroutine.
//
// Only successes are remembered, keyed by the SHA-256 of the whole header; raw
// headers are not kept. Failures are never cached: an attacker without the
// secret therefore cannot add entries, so cannot evict honest ones, and a
// negative cache would buy nothing since varying the salt defeats it. Floods
// of bogus headers are bounded by the cost limits and the semaphore instead.
//
// Refusals wrap [ErrUnauthorized] (answer 401); running out of time while
// waiting for a verification slot wraps [ErrBusy] (answer 503). Callers branch
// with errors.Is.
package auth
