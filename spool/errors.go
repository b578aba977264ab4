package spool

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrFull is returned by Append when the chunk would take the
	// unacknowledged bytes beyond Options.MaxBytes. Acknowledging chunks
	// frees room.
	ErrFull = errors.New("spool full")

	// ErrClosed is returned by every method of a Spool after Close or Remove,
	// and by Wait when the spool is closed while it waits.
	ErrClosed = errors.New("spool closed")

	// ErrNotFound is returned by Read and Ack for a chunk that was not
	// appended yet, and by Read for a chunk whose segment was already
	// deleted after its acknowledgement.
	ErrNotFound = errors.New("chunk not found")

	// ErrCorrupt is returned by Read when a chunk's record fails its
	// checksum, and by Open when the directory is not a usable spool (no
	// meta file). Damage that Open can repair is reported in Recovery
	// instead.
	ErrCorrupt = errors.New("spool corrupt")

	// ErrSealed is returned by Append after Seal.
	ErrSealed = errors.New("spool sealed")

	// ErrOutOfOrder is returned by Ack for a chunk beyond the next one to
	// acknowledge: acknowledgements are strictly in order.
	ErrOutOfOrder = errors.New("acknowledgement out of order")

	// ErrTooLarge is returned by Append for a chunk over MaxChunkBytes.
	ErrTooLarge = errors.New("chunk too large")

	// ErrLocked is returned by Open and Create when another process holds
	// the spool open.
	ErrLocked = errors.New("spool locked by another process")
)
