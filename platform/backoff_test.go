package platform

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestBackoffFullJitterCapped(t *testing.T) {
	c := &Client{retryMin: time.Second, retryMax: 30 * time.Second}
	var asked []int64
	pick := func(f func(n int64) int64) {
		c.randN = func(n int64) int64 { asked = append(asked, n); return f(n) }
	}
	caps := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	pick(func(n int64) int64 { return n - 1 }) // the top of the range
	for i, want := range caps {
		asked = asked[:0]
		if got := c.wait(i+1, -1); got != want*time.Second {
			t.Errorf("attempt %d: wait %v at the top of the jitter, want %v", i+1, got, want*time.Second)
		}
		if len(asked) != 1 || asked[0] != int64(want*time.Second)+1 {
			t.Errorf("attempt %d: random range %v, want [0, %v]", i+1, asked, want*time.Second)
		}
	}
	pick(func(int64) int64 { return 0 })
	for attempt := 1; attempt < 10; attempt++ {
		if got := c.wait(attempt, -1); got != 0 {
			t.Errorf("attempt %d: wait %v at the bottom of the jitter, want 0", attempt, got)
		}
	}
	pick(func(n int64) int64 { return n / 2 })
	if got := c.wait(3, -1); got != 2*time.Second {
		t.Errorf("attempt 3 mid-jitter: %v, want 2s", got)
	}
	// Retry-After is a floor, RetryMax the ceiling.
	if got := c.wait(1, 5*time.Second); got != 5*time.Second {
		t.Errorf("Retry-After 5s: wait %v", got)
	}
	if got := c.wait(5, 5*time.Second); got != 8*time.Second {
		t.Errorf("Retry-After 5s under a larger jitter: wait %v, want 8s", got)
	}
	if got := c.wait(1, time.Hour); got != 30*time.Second {
		t.Errorf("Retry-After 1h: wait %v, want RetryMax", got)
	}
}

func TestBackoffCapOverflow(t *testing.T) {
	for _, attempt := range []int{0, 1, 34, 35, 62, 63, 64, 1000} {
		got := backoffCap(attempt, time.Second, 30*time.Second)
		if got <= 0 || got > 30*time.Second {
			t.Errorf("backoffCap(%d) = %v, outside (0, 30s]", attempt, got)
		}
	}
	if got := backoffCap(40, time.Duration(1<<40), time.Duration(1<<62)); got != time.Duration(1<<62) {
		t.Errorf("overflowing shift: %v, want the max", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"99999999999999999999999", maxRetryAfterSeconds * time.Second, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 02-Mar-25 12:00:00 GMT", 24 * time.Hour, true}, // RFC 850
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := sleepCtx(ctx, time.Millisecond); err != nil {
		t.Fatalf("short sleep: %v", err)
	}
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleep = %v", err)
	}
	if err := sleepCtx(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("zero sleep on a cancelled context = %v", err)
	}
}
