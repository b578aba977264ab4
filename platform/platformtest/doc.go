// Package platformtest is a real HTTP receiver that plays lambda-endpoint's
// platform in tests: it serves PUT /submit on 127.0.0.1, checks every
// request against the API.md contract and records what each trace
// delivered.
//
// Every request's Authorization header is verified independently of the
// project's auth package (Verify parses the PHC string and recomputes the
// argon2 hash with golang.org/x/crypto/argon2). A header that verified once
// is remembered by its exact value, so a stream of chunks costs one argon2
// computation, not one per request. Content-Type, JSON syntax, field types,
// base64 and the per-trace order (start, chunks 0, 1, 2, ... without gaps,
// finished last) are checked; every deviation is recorded as a violation
// that tests read with Violations (or AssertNoViolations). Exact duplicates
// (a retried request whose answer was lost) are accepted and counted.
//
// Malformed requests get the answer a real platform would give (401 bad
// Authorization, 415 wrong Content-Type, 400 bad JSON or fields, 404/405
// wrong path or method); requests that are well-formed but break the
// per-trace order are answered 200 so the endpoint under test carries on
// and the test sees the violation at the end instead of a stuck retry loop.
//
// Faults can be injected while the receiver runs: FailNext answers the next
// requests with an error status (optionally with Retry-After), SetDelay
// delays every answer (the request is recorded before the delay, so a
// client timing out produces a genuine duplicate), and Stop/Restart close
// the listener and every connection and later listen again on the same
// address.
//
// A Platform belongs to the test that created it and is closed by that
// test's Cleanup; it does not import the platform client package.
package platformtest
