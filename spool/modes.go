package spool

// Modes of what a spool creates: trace output is private to the endpoint's
// user (it may hold arguments and return values of the traced program).
const (
	// DirMode is the mode of spool directories (and of the spool root
	// when Create makes it).
	DirMode = 0o700
	// FileMode is the mode of every file in a spool: segments, state, meta.
	FileMode = 0o600
)
