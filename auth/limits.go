package auth

import (
	"runtime"
	"time"
)

// Limits bound what a caller-presented hash may cost us. A zero field takes
// its default (see DefaultLimits); a negative CacheSize or CacheTTL disables
// the cache of verified headers.
type Limits struct {
	MaxMemoryKiB   uint32        // refuse m above this without hashing (default 65536)
	MaxIterations  uint32        // refuse t above this (default 10)
	MaxParallelism uint8         // refuse p above this (default 4)
	MaxConcurrent  int           // argon2 verifications running at once (default runtime.NumCPU())
	CacheSize      int           // verified headers remembered (default 1024); negative disables
	CacheTTL       time.Duration // how long a verified header is remembered (default 10m); negative disables
}

// MaxHeaderLength is the longest header value Verify parses; longer ones are
// refused outright. A header with a 36-character UUID and 64-byte salt and
// hash is about 230 bytes.
const MaxHeaderLength = 1024

// DefaultLimits returns the limits used for zero fields: 64 MiB, 10
// iterations, 4 lanes, one verification per CPU, 1024 headers for 10 minutes.
func DefaultLimits() Limits {
	return Limits{
		MaxMemoryKiB:   64 * 1024,
		MaxIterations:  10,
		MaxParallelism: 4,
		MaxConcurrent:  runtime.NumCPU(),
		CacheSize:      1024,
		CacheTTL:       10 * time.Minute,
	}
}

// withDefaults returns l with every zero field (and a non-positive
// MaxConcurrent) replaced by its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMemoryKiB == 0 {
		l.MaxMemoryKiB = d.MaxMemoryKiB
	}
	if l.MaxIterations == 0 {
		l.MaxIterations = d.MaxIterations
	}
	if l.MaxParallelism == 0 {
		l.MaxParallelism = d.MaxParallelism
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = d.MaxConcurrent
	}
	if l.CacheSize == 0 {
		l.CacheSize = d.CacheSize
	}
	if l.CacheTTL == 0 {
		l.CacheTTL = d.CacheTTL
	}
	return l
}

// check refuses params above the limits. Parse has already refused zeros.
func (l Limits) check(p Params) error {
	switch {
	case p.Memory > l.MaxMemoryKiB:
		return refuse("cost over limit: m=%d above %d", p.Memory, l.MaxMemoryKiB)
	case p.Iterations > l.MaxIterations:
		return refuse("cost over limit: t=%d above %d", p.Iterations, l.MaxIterations)
	case p.Parallelism > uint32(l.MaxParallelism):
		return refuse("cost over limit: p=%d above %d", p.Parallelism, l.MaxParallelism)
	}
	return nil
}
