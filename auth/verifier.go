package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phcMarker separates the endpoint UUID from the PHC string in a header.
const phcMarker = "$argon2"

// Verifier checks incoming Authorization headers against one endpoint UUID
// and secret. It is safe for concurrent use; build one per configuration and
// share it.
type Verifier struct {
	uuid   digest // SHA-256 of the endpoint UUID, compared in constant time
	hasID  bool   // false when the UUID is empty: nothing verifies
	secret []byte
	limits Limits
	floor  floor         // least cost accepted (MinMemoryKiB, MinIterations)
	sem    chan struct{} // one token per argon2 computation running
	bufs   chan []block  // argon2 memory kept for reuse, at most MaxConcurrent
	queued atomic.Int64  // callers waiting for a token of sem
	cache  *cache        // nil when disabled
	now    func() time.Time

	mu      sync.Mutex
	flights map[digest]*flight // verifications in progress, by header digest

	// The argon2 memory in bufs (4 MiB at the seed cost) is returned to
	// the operating system once no hash has run for releaseIdle
	// (releaseBufs): an endpoint that verified a few headers does not keep
	// it for its lifetime, a flood keeps reusing it.
	relMu       sync.Mutex
	release     *time.Timer // armed after each hash; nil before the first
	releaseIdle time.Duration

	hashes atomic.Int64 // argon2 computations started, for tests
}

// flight is one verification in progress that concurrent Verify calls of
// the same header wait for.
type flight struct {
	done    chan struct{} // closed when err is final
	err     error
	waiters int // calls waiting besides the leader; guarded by Verifier.mu
}

// NewVerifier returns a Verifier for the endpoint UUID and secret. Zero
// fields of l take their defaults (DefaultLimits). An empty UUID matches no
// header.
func NewVerifier(endpointUUID, secret string, l Limits) *Verifier {
	l = l.withDefaults()
	return &Verifier{
		uuid:    sha256.Sum256([]byte(endpointUUID)),
		hasID:   endpointUUID != "",
		secret:  []byte(secret),
		limits:  l,
		floor:   floor{memory: MinMemoryKiB, iterations: MinIterations},
		sem:     make(chan struct{}, l.MaxConcurrent),
		bufs:    make(chan []block, l.MaxConcurrent),
		cache:   newCache(l.CacheSize, l.CacheTTL),
		now:     time.Now,
		flights: make(map[digest]*flight),

		releaseIdle: releaseIdle,
	}
}

// releaseIdle is how long the argon2 memory kept for reuse outlives the
// last hash.
const releaseIdle = time.Second

// armRelease (re)starts the countdown to releaseBufs.
func (v *Verifier) armRelease() {
	v.relMu.Lock()
	defer v.relMu.Unlock()
	if v.release == nil {
		v.release = time.AfterFunc(v.releaseIdle, v.releaseBufs)
		return
	}
	v.release.Reset(v.releaseIdle)
}

// releaseBufs drops the argon2 memory kept for reuse and hands it back to
// the operating system (the Go heap would keep it below its goal, and an
// idle endpoint runs no collection that frees it). While hashes run or
// wait it tries again later. A hash racing with it at worst allocates its
// memory anew.
func (v *Verifier) releaseBufs() {
	if len(v.sem) > 0 || v.queued.Load() > 0 {
		v.armRelease()
		return
	}
	dropped := false
drain:
	for {
		select {
		case <-v.bufs:
			dropped = true
		default:
			break drain
		}
	}
	if dropped {
		debug.FreeOSMemory()
	}
}

// Verify returns nil if header is the configured endpoint UUID followed by a
// PHC-encoded argon2i or argon2id (v=19) hash of the secret. It refuses,
// wrapping ErrUnauthorized, a header that is empty, longer than
// MaxHeaderLength, malformed, for another endpoint, of an unsupported variant
// or version, outside the cost window (below MinMemoryKiB or MinIterations,
// above the Limits; checked before any hashing) or not matching the secret.
// The messages differ for logs; a caller-facing layer must answer all of them
// alike. A header verified recently is accepted from the cache without
// hashing; concurrent calls with the same header share one computation. It
// wraps ErrBusy when Limits.MaxQueue callers already wait for a verification
// slot, or when none frees up within Limits.MaxWait (then also wrapping
// context.DeadlineExceeded) or before ctx is done (wrapping ctx's error).
func (v *Verifier) Verify(ctx context.Context, header string) error {
	if header == "" {
		return refuse("missing Authorization header")
	}
	if len(header) > MaxHeaderLength {
		return refuse("header longer than %d bytes", MaxHeaderLength)
	}
	key := headerDigest(header)
	if v.cache.contains(key, v.now()) {
		return nil
	}
	id, phc, ok := strings.Cut(header, phcMarker)
	if !ok {
		return refuse("malformed header: want <endpoint uuid>%s...", phcMarker)
	}
	if !v.knownEndpoint(id) {
		return refuse("unknown endpoint")
	}
	p, salt, hash, err := Parse(phcMarker + phc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err := v.limits.check(v.floor, p); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, v.limits.MaxWait)
	defer cancel()
	return v.verifyOnce(ctx, key, p, salt, hash)
}

// String describes the verifier without its secret.
func (v *Verifier) String() string { return "auth.Verifier{[redacted]}" }

// GoString describes the verifier without its secret, for %#v.
func (v *Verifier) GoString() string { return v.String() }

// knownEndpoint compares id with the configured UUID in constant time, also
// when their lengths differ (it compares digests).
func (v *Verifier) knownEndpoint(id string) bool {
	sum := sha256.Sum256([]byte(id))
	return subtle.ConstantTimeCompare(sum[:], v.uuid[:]) == 1 && v.hasID
}

// verifyOnce runs the verification of the header with digest key, or waits
// for the one already in progress. A waiter whose leader gave up for lack of
// a slot (its own context ended) tries again while its context lasts.
func (v *Verifier) verifyOnce(ctx context.Context, key digest, p Params, salt, hash []byte) error {
	for {
		v.mu.Lock()
		if f, ok := v.flights[key]; ok {
			f.waiters++
			v.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return busy("waiting for a verification in progress", ctx.Err())
			}
			if errors.Is(f.err, ErrBusy) && ctx.Err() == nil {
				continue
			}
			return f.err
		}
		// A leader stores its success in the cache before leaving flights,
		// so a header verified since our first look is found here.
		if v.cache.contains(key, v.now()) {
			v.mu.Unlock()
			return nil
		}
		f := &flight{done: make(chan struct{}), err: refuse("verification aborted")}
		v.flights[key] = f
		v.mu.Unlock()
		v.lead(ctx, key, f, p, salt, hash)
		return f.err
	}
}

// lead computes the result of flight f, remembers a success, and releases
// the waiters, even if hashing panics.
func (v *Verifier) lead(ctx context.Context, key digest, f *flight, p Params, salt, hash []byte) {
	defer func() {
		v.mu.Lock()
		delete(v.flights, key)
		v.mu.Unlock()
		close(f.done)
	}()
	if err := ctx.Err(); err != nil {
		f.err = busy("waiting for a verification slot", err)
		return
	}
	select {
	case v.sem <- struct{}{}: // a free slot: no queueing
	default:
		if n := v.queued.Add(1); n > int64(v.limits.MaxQueue) {
			v.queued.Add(-1)
			f.err = fmt.Errorf("%w: %d callers already waiting for a verification slot", ErrBusy, n-1)
			return
		}
		select {
		case v.sem <- struct{}{}:
			v.queued.Add(-1)
		case <-ctx.Done():
			v.queued.Add(-1)
			f.err = busy("waiting for a verification slot", ctx.Err())
			return
		}
	}
	defer func() { <-v.sem }()
	f.err = v.compare(p, salt, hash)
	if f.err == nil {
		v.cache.add(key, v.now())
	}
}

// compare hashes the secret with the presented parameters and salt and
// compares the result with hash in constant time. p is within the limits
// and the caller holds a token of v.sem, so at most MaxConcurrent buffers
// are ever out: they are reused, never garbage.
func (v *Verifier) compare(p Params, salt, hash []byte) error {
	v.hashes.Add(1)
	var buf []block
	select {
	case buf = <-v.bufs:
	default:
	}
	got, buf := argon2Key(p.Variant, v.secret, salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(hash)), buf)
	select {
	case v.bufs <- buf:
	default: // cannot happen while callers hold sem; never block
	}
	v.armRelease()
	if subtle.ConstantTimeCompare(got, hash) != 1 {
		return refuse("hash mismatch")
	}
	return nil
}
