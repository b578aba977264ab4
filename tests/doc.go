// Package tests holds lambda-endpoint's integration and end-to-end tests.
// They build the real binary (with the race detector) and start it as a
// separate process, against the real PostgreSQL and SQLite stores, a test
// platform (platform/platformtest) that verifies every Authorization header
// and reassembles the chunks, and the real bpftrace or, for process
// lifecycle edge cases, the fake tracer in tracer/internal/faketracer.
//
// Tests that need PostgreSQL, bpftrace or root fail under CI=true when the
// component is missing, and skip loudly elsewhere.
package tests
