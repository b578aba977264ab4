package actors

import "errors"

// Errors the Runtime's methods wrap. Callers branch on them with errors.Is.
var (
	// ErrInvalid: the template or request was refused by validation.
	ErrInvalid = errors.New("invalid trace request")
	// ErrBinaryMissing: the template's process does not exist.
	ErrBinaryMissing = errors.New("traced binary not found")
	// ErrTracerMissing: the configured tracer executable does not exist or
	// is not executable; the message names the config key.
	ErrTracerMissing = errors.New("tracer executable not found")
	// ErrTooManyTraces: the concurrent trace limit is reached.
	ErrTooManyTraces = errors.New("too many running traces")
	// ErrTimeout: the runtime did not answer in time.
	ErrTimeout = errors.New("trace runtime did not answer in time")
	// ErrShuttingDown: the runtime is stopping and takes no new traces.
	ErrShuttingDown = errors.New("trace runtime is shutting down")
)
