package platform

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfterSeconds bounds a parsed Retry-After before it is capped at
// RetryMax, so huge values cannot overflow a Duration.
const maxRetryAfterSeconds = 1 << 31

// backoffCap returns min(max, min*2^(attempt-1)) for attempt >= 1.
func backoffCap(attempt int, lo, hi time.Duration) time.Duration {
	shift := attempt - 1
	if shift < 0 {
		shift = 0
	}
	if shift >= 62 {
		return hi
	}
	d := lo << shift
	if d <= 0 || d>>shift != lo || d > hi {
		return hi
	}
	return d
}

// wait returns how long to sleep after failed attempt number attempt
// (from 1): full jitter over the backoff cap, raised to retryAfter when the
// platform asked for a longer pause (retryAfter < 0: it did not), and
// capped at RetryMax.
func (c *Client) wait(attempt int, retryAfter time.Duration) time.Duration {
	capped := backoffCap(attempt, c.retryMin, c.retryMax)
	w := time.Duration(c.randN(int64(capped) + 1))
	if retryAfter > w {
		w = retryAfter
	}
	if w > c.retryMax {
		w = c.retryMax
	}
	return w
}

// parseRetryAfter parses a Retry-After value: delay seconds or an HTTP
// date, relative to now. A date in the past means no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return time.Duration(maxRetryAfterSeconds) * time.Second, true
			}
			return 0, false
		}
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// sleepCtx waits for d or until ctx is done, whichever comes first, and
// returns ctx.Err() in the latter case.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
