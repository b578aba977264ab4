package auth

import (
	"runtime"
	"time"
)

// The cost floor: a presented hash must cost at least the seed's example
// (argon2 m=4096, t=3, p=1), the cost of the endpoint's own outgoing header.
// It is not configurable: a weaker hash is refused without hashing.
const (
	MinMemoryKiB   = 4096
	MinIterations  = 3
	MinParallelism = 1
)

// Limits bound what a caller-presented hash may cost us and how callers
// wait for a verification. A zero field takes its default (see
// DefaultLimits); a negative CacheSize or CacheTTL disables the cache of
// verified headers.
type Limits struct {
	MaxMemoryKiB   uint32        // refuse m above this without hashing (default 16384, 4× the floor)
	MaxIterations  uint32        // refuse t above this (default 6, 2× the floor)
	MaxParallelism uint8         // refuse p above this (default 4)
	MaxConcurrent  int           // argon2 verifications running at once (default DefaultConcurrent())
	MaxWait        time.Duration // longest wait for a verification slot (default 1s), then ErrBusy
	MaxQueue       int           // callers waiting for a slot at once (default 64); more get ErrBusy at once
	CacheSize      int           // verified headers remembered (default 1024); negative disables
	CacheTTL       time.Duration // how long a verified header is remembered (default 10m); negative disables
}

// MaxHeaderLength is the longest header value Verify parses; longer ones are
// refused outright. A header with a 36-character UUID and 64-byte salt and
// hash is about 230 bytes.
const MaxHeaderLength = 1024

// DefaultConcurrent is the default number of argon2 verifications at once:
// half the CPUs, at least 1 and at most 4. Verifying never takes every CPU,
// so requests keep being served during a flood (on a 2-CPU host two
// concurrent verifications made honest requests wait past 2 s; one kept
// them at the configured wait), and honest callers rarely need more since
// verified headers are cached.
func DefaultConcurrent() int {
	return min(4, max(1, runtime.NumCPU()/2))
}

// DefaultLimits returns the limits used for zero fields: at most 16 MiB, 6
// iterations and 4 lanes (8× the floor's CPU cost, 4× its memory),
// DefaultConcurrent verifications at once, a 1 s wait for a slot with at most 64 waiting, 1024
// headers remembered for 10 minutes.
func DefaultLimits() Limits {
	return Limits{
		MaxMemoryKiB:   16 * 1024,
		MaxIterations:  6,
		MaxParallelism: 4,
		MaxConcurrent:  DefaultConcurrent(),
		MaxWait:        time.Second,
		MaxQueue:       64,
		CacheSize:      1024,
		CacheTTL:       10 * time.Minute,
	}
}

// withDefaults returns l with every zero field (and a non-positive
// MaxConcurrent, MaxWait or MaxQueue) replaced by its default.
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
	if l.MaxWait <= 0 {
		l.MaxWait = d.MaxWait
	}
	if l.MaxQueue <= 0 {
		l.MaxQueue = d.MaxQueue
	}
	if l.CacheSize == 0 {
		l.CacheSize = d.CacheSize
	}
	if l.CacheTTL == 0 {
		l.CacheTTL = d.CacheTTL
	}
	return l
}

// floor is the least cost accepted; Verifier keeps it in a field so tests
// can lower it to keep hashing cheap.
type floor struct {
	memory, iterations uint32
}

// check refuses params outside [f, l]. Parse has already refused zeros.
func (l Limits) check(f floor, p Params) error {
	switch {
	case p.Memory < f.memory:
		return refuse("cost under floor: m=%d below %d", p.Memory, f.memory)
	case p.Iterations < f.iterations:
		return refuse("cost under floor: t=%d below %d", p.Iterations, f.iterations)
	case p.Memory > l.MaxMemoryKiB:
		return refuse("cost over limit: m=%d above %d", p.Memory, l.MaxMemoryKiB)
	case p.Iterations > l.MaxIterations:
		return refuse("cost over limit: t=%d above %d", p.Iterations, l.MaxIterations)
	case p.Parallelism > uint32(l.MaxParallelism):
		return refuse("cost over limit: p=%d above %d", p.Parallelism, l.MaxParallelism)
	}
	return nil
}
