package auth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyBusy(t *testing.T) {
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	expired, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tests := []struct {
		name      string
		ctx       context.Context
		slotTaken bool
		wantCause error
	}{
		{"no free slot before deadline", expired, true, context.DeadlineExceeded},
		{"no free slot, cancelled", cancelled, true, context.Canceled},
		{"free slot but already cancelled", cancelled, false, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
			if tt.slotTaken {
				v.sem <- struct{}{}
				defer func() { <-v.sem }()
			}
			err := v.Verify(tt.ctx, h)
			if !errors.Is(err, ErrBusy) || !errors.Is(err, tt.wantCause) {
				t.Fatalf("Verify = %v, want ErrBusy wrapping %v", err, tt.wantCause)
			}
			if errors.Is(err, ErrUnauthorized) {
				t.Errorf("busy error %v also wraps ErrUnauthorized", err)
			}
			if n := v.hashes.Load(); n != 0 {
				t.Errorf("hashes = %d, want 0", n)
			}
			if len(v.flights) != 0 {
				t.Errorf("%d flights left behind", len(v.flights))
			}
		})
	}
}

func TestVerifyBusyStillRefusesBadHeaders(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
	v.sem <- struct{}{}
	defer func() { <-v.sem }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := v.Verify(ctx, strings.Replace(seedHeader, "m=4096", "m=4194304", 1))
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("over-limit header with no free slot = %v, want ErrUnauthorized", err)
	}
}

// TestVerifyMaxWait holds every slot: a verification gives up with ErrBusy
// once MaxWait has passed although its own context has no deadline.
func TestVerifyMaxWait(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1, MaxWait: 20 * time.Millisecond})
	v.sem <- struct{}{}
	defer func() { <-v.sem }()
	err := v.Verify(context.Background(), makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32))
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want ErrBusy wrapping DeadlineExceeded", err)
	}
	if n := v.queued.Load(); n != 0 {
		t.Errorf("queued = %d after the wait, want 0", n)
	}
}

// TestVerifyQueueBound fills the queue behind a held slot: the next caller
// is told busy at once, without waiting; once the slot frees, the queued
// callers verify.
func TestVerifyQueueBound(t *testing.T) {
	const queue = 3
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1, MaxQueue: queue, MaxWait: time.Minute})
	v.sem <- struct{}{}
	errs := make(chan error, queue)
	for i := range queue {
		h := makeHeader(t, seedUUID, seedSecret, cheap, salt(byte(10+i), 16), 32)
		go func() { errs <- v.Verify(context.Background(), h) }()
	}
	waitFor(t, "the queue to fill", func() bool { return v.queued.Load() == queue })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := v.Verify(ctx, makeHeader(t, seedUUID, seedSecret, cheap, salt(99, 16), 32))
	if !errors.Is(err, ErrBusy) || ctx.Err() != nil || !strings.Contains(err.Error(), "3 callers already waiting") {
		t.Fatalf("Verify with a full queue = %v (ctx %v), want ErrBusy at once", err, ctx.Err())
	}
	if errors.Is(err, ErrUnauthorized) {
		t.Errorf("busy error %v also wraps ErrUnauthorized", err)
	}
	<-v.sem
	for range queue {
		if err := <-errs; err != nil {
			t.Errorf("queued Verify: %v", err)
		}
	}
	if n := v.queued.Load(); n != 0 {
		t.Errorf("queued = %d at the end, want 0", n)
	}
}

// TestVerifyCollapsesConcurrentCalls holds the only slot so that every call
// of the same header queues behind one leader, then checks one hash served
// them all. The cache is disabled so only the collapsing can explain it.
func TestVerifyCollapsesConcurrentCalls(t *testing.T) {
	const n = 50
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1, CacheSize: -1})
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	v.sem <- struct{}{}
	errs := make(chan error, n)
	for range n {
		go func() { errs <- v.Verify(context.Background(), h) }()
	}
	waitFor(t, "all calls to join one verification", func() bool { return v.waiters(h) == n-1 })
	<-v.sem
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := v.hashes.Load(); got != 1 {
		t.Errorf("hashes = %d, want 1 for %d concurrent identical headers", got, n)
	}
	if len(v.flights) != 0 {
		t.Errorf("%d flights left behind", len(v.flights))
	}
}

// TestVerifyCollapsedFailure checks waiters get the leader's refusal.
func TestVerifyCollapsedFailure(t *testing.T) {
	const n = 10
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
	h := makeHeader(t, seedUUID, "wrong", cheap, salt(1, 16), 32)
	v.sem <- struct{}{}
	errs := make(chan error, n)
	for range n {
		go func() { errs <- v.Verify(context.Background(), h) }()
	}
	waitFor(t, "all calls to join one verification", func() bool { return v.waiters(h) == n-1 })
	<-v.sem
	for range n {
		if err := <-errs; !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "hash mismatch") {
			t.Errorf("Verify = %v, want hash mismatch", err)
		}
	}
	if got := v.hashes.Load(); got != 1 {
		t.Errorf("hashes = %d, want 1", got)
	}
}

// TestVerifyWaiterOutlivesLeader checks that when the leader gives up for
// lack of a slot, a waiter whose context still runs verifies by itself.
func TestVerifyWaiterOutlivesLeader(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	v.sem <- struct{}{}

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { leader <- v.Verify(leaderCtx, h) }()
	waitFor(t, "the leader to start", func() bool { return v.waiters(h) == 0 })

	waiter := make(chan error, 1)
	go func() { waiter <- v.Verify(context.Background(), h) }()
	waitFor(t, "the waiter to join", func() bool { return v.waiters(h) == 1 })

	cancelLeader()
	if err := <-leader; !errors.Is(err, ErrBusy) {
		t.Fatalf("leader = %v, want ErrBusy", err)
	}
	waitFor(t, "the waiter to lead", func() bool { return v.waiters(h) == 0 })
	<-v.sem
	if err := <-waiter; err != nil {
		t.Errorf("waiter = %v, want success", err)
	}
	if got := v.hashes.Load(); got != 1 {
		t.Errorf("hashes = %d, want 1", got)
	}
}

func TestVerifyWaiterContextEnds(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	v.sem <- struct{}{}
	leader := make(chan error, 1)
	go func() { leader <- v.Verify(context.Background(), h) }()
	waitFor(t, "the leader to start", func() bool { return v.waiters(h) == 0 })

	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { waiter <- v.Verify(ctx, h) }()
	waitFor(t, "the waiter to join", func() bool { return v.waiters(h) == 1 })
	cancel()
	if err := <-waiter; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Errorf("waiter = %v, want ErrBusy wrapping context.Canceled", err)
	}
	<-v.sem
	if err := <-leader; err != nil {
		t.Errorf("leader = %v, want success", err)
	}
}

// TestVerifyManyGoroutinesOneHash runs identical verifications with no
// orchestration: the flight plus the cache re-check make it one hash.
func TestVerifyManyGoroutinesOneHash(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if err := v.Verify(context.Background(), h); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if got := v.hashes.Load(); got != 1 {
		t.Errorf("hashes = %d, want 1", got)
	}
}

// TestVerifyDistinctHeadersConcurrently exercises the semaphore and cache
// under the race detector with several distinct headers.
func TestVerifyDistinctHeadersConcurrently(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 2, CacheSize: 3})
	var headers []string
	for i := range 6 {
		secret := seedSecret
		if i%3 == 2 {
			secret = "wrong"
		}
		headers = append(headers, makeHeader(t, seedUUID, secret, cheap, salt(byte(i), 16), 32))
	}
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for j := range 10 {
				i := (g + j) % len(headers)
				err := v.Verify(context.Background(), headers[i])
				if wantOK := i%3 != 2; wantOK != (err == nil) {
					t.Errorf("header %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if n := v.cache.len(); n > 3 {
		t.Errorf("cache holds %d entries, want at most 3", n)
	}
}

// TestVerifyMemoryBound floods the verifier with headers demanding 4 GiB
// each: all are refused before hashing, so the heap barely grows.
func TestVerifyMemoryBound(t *testing.T) {
	const goroutines = 200
	v, _ := newTestVerifier(Limits{MaxQueue: goroutines})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for i := range goroutines {
		h := makeHeaderUnchecked(i)
		wg.Go(func() {
			if err := v.Verify(context.Background(), h); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "cost over limit") {
				t.Errorf("Verify = %v, want cost over limit", err)
			}
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	if n := v.hashes.Load(); n != 0 {
		t.Errorf("hashes = %d, want 0", n)
	}
	const limit = 16 << 20
	if growth := int64(after.HeapAlloc) - int64(before.HeapAlloc); growth > limit {
		t.Errorf("heap grew by %d bytes, want under %d", growth, limit)
	}
	if after.TotalAlloc-before.TotalAlloc > limit {
		t.Errorf("allocated %d bytes in total, want under %d", after.TotalAlloc-before.TotalAlloc, limit)
	}
}

// makeHeaderUnchecked returns a distinct, well-formed header demanding
// m=4194304 (4 GiB); its hash is random bytes since it is never computed.
func makeHeaderUnchecked(i int) string {
	s := salt(byte(i), 16)
	return seedUUID + Params{Argon2id, 4194304, 1, 1}.Encode(s, salt(byte(i+1), 32))
}

// TestVerifyReusesArgon2Memory checks that verifications of distinct
// maximum-memory headers reuse the slot's buffer: after the first, each
// allocates a small fraction of its m KiB (x/crypto/argon2 allocated all of
// it every time, which is what grew RSS under a flood).
func TestVerifyReusesArgon2Memory(t *testing.T) {
	const n = 4
	v := NewVerifier(seedUUID, seedSecret, Limits{MaxConcurrent: 1, CacheSize: -1})
	p := Params{Argon2id, v.limits.MaxMemoryKiB, MinIterations, 1}
	headers := make([]string, n+1)
	for i := range headers {
		headers[i] = makeHeader(t, seedUUID, "wrong", p, salt(byte(i), 16), 32)
	}
	if err := v.Verify(context.Background(), headers[0]); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Verify = %v, want a refusal", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, h := range headers[1:] {
		if err := v.Verify(context.Background(), h); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Verify = %v, want a refusal", err)
		}
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / n
	if limit := uint64(p.Memory) * 1024 / 16; perCall > limit {
		t.Errorf("each verification of m=%d KiB allocated %d bytes, want under %d (the buffer is not reused)", p.Memory, perCall, limit)
	}
	t.Logf("%d bytes allocated per m=%d KiB verification", perCall, p.Memory)
	if n := v.hashes.Load(); n != int64(len(headers)) {
		t.Errorf("hashes = %d, want %d", n, len(headers))
	}
}
