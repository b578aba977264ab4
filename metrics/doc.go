// Package metrics holds lambda-endpoint's Prometheus metrics: the families
// the contract lists (API.md "Metrics"), the Go and process collectors, and
// the HTTP server that exposes them on server.metrics-listen.
//
// A *Metrics is fed by events: the trace runtime calls its Trace* and
// Output*/Chunk*/Submit*/Spool*/Lost* methods as things happen (through the
// actors.Observer seam), the REST API calls HTTPRequest and AuthFailed. It
// never reads another component's state. Every counter is created at 0
// when the Metrics is built, for every label value known in advance, so an
// alert on a rate works before the first event.
//
// Metrics owns its registry (not the global default one), so two endpoints
// embedded in one process, or parallel tests, do not collide.
package metrics
