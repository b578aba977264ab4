package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestVerifyCachesSuccess(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	for i := range 3 {
		if err := v.Verify(context.Background(), seedHeader); err != nil {
			t.Fatalf("Verify #%d: %v", i, err)
		}
	}
	if n := v.hashes.Load(); n != 1 {
		t.Errorf("hashes after 3 verifications = %d, want 1", n)
	}
}

func TestVerifyCacheHitNeedsNoSlot(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxConcurrent: 1})
	if err := v.Verify(context.Background(), seedHeader); err != nil {
		t.Fatal(err)
	}
	v.sem <- struct{}{} // every slot taken
	defer func() { <-v.sem }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Verify(ctx, seedHeader); err != nil {
		t.Errorf("cached header with cancelled context and no free slot: %v", err)
	}
}

func TestVerifyCacheExpires(t *testing.T) {
	v, clock := newTestVerifier(Limits{CacheTTL: time.Minute})
	h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	verify := func(wantHashes int64) {
		t.Helper()
		if err := v.Verify(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		if n := v.hashes.Load(); n != wantHashes {
			t.Fatalf("hashes = %d, want %d", n, wantHashes)
		}
	}
	verify(1)
	clock.advance(time.Minute - time.Nanosecond)
	verify(1) // still cached; the hit does not extend the expiry
	clock.advance(time.Nanosecond)
	verify(2) // expired: verified again and stored anew
	clock.advance(time.Minute - time.Nanosecond)
	verify(2)
}

func TestVerifyCacheEvictsLeastRecentlyUsed(t *testing.T) {
	v, _ := newTestVerifier(Limits{CacheSize: 2})
	a := makeHeader(t, seedUUID, seedSecret, cheap, salt('a', 16), 32)
	b := makeHeader(t, seedUUID, seedSecret, cheap, salt('b', 16), 32)
	c := makeHeader(t, seedUUID, seedSecret, cheap, salt('c', 16), 32)
	steps := []struct {
		header     string
		wantHashes int64
	}{
		{a, 1}, {b, 2}, // cache: b a
		{a, 2}, // hit; cache: a b
		{c, 3}, // evicts b; cache: c a
		{a, 3}, // hit
		{b, 4}, // evicted earlier; evicts c; cache: b a
		{c, 5},
	}
	for i, s := range steps {
		if err := v.Verify(context.Background(), s.header); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n := v.hashes.Load(); n != s.wantHashes {
			t.Fatalf("step %d: hashes = %d, want %d", i, n, s.wantHashes)
		}
		if n := v.cache.len(); n > 2 {
			t.Fatalf("step %d: cache holds %d entries, want at most 2", i, n)
		}
	}
}

func TestVerifyDoesNotCacheFailures(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	honest := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
	if err := v.Verify(context.Background(), honest); err != nil {
		t.Fatal(err)
	}
	bad := makeHeader(t, seedUUID, "wrong", cheap, salt(2, 16), 32)
	for i := range 2 {
		if err := v.Verify(context.Background(), bad); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("bad header #%d: %v, want ErrUnauthorized", i, err)
		}
	}
	if n := v.hashes.Load(); n != 3 {
		t.Errorf("hashes = %d, want 3 (a failure is verified again each time)", n)
	}
	if n := v.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want only the honest one", n)
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	for _, l := range []Limits{{CacheSize: -1}, {CacheTTL: -1}} {
		v, _ := newTestVerifier(l)
		h := makeHeader(t, seedUUID, seedSecret, cheap, salt(1, 16), 32)
		for range 2 {
			if err := v.Verify(context.Background(), h); err != nil {
				t.Fatal(err)
			}
		}
		if n := v.hashes.Load(); n != 2 {
			t.Errorf("%+v: hashes = %d, want 2 with the cache disabled", l, n)
		}
	}
}

func TestCacheKeepsNoRawHeader(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	if err := v.Verify(context.Background(), seedHeader); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.cache.entries[headerDigest(seedHeader)]; !ok {
		t.Fatal("cache is not keyed by the header's SHA-256")
	}
}
