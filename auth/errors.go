package auth

import (
	"errors"
	"fmt"
)

// ErrUnauthorized is wrapped by every refusal of a header: missing, too long,
// malformed, unknown endpoint, unsupported variant or version, cost outside
// the window, or hash mismatch. The wrapping error's message names the reason
// for logs ("unauthorized: hash mismatch"); it never repeats the header, at
// most a short quoted prefix of an unsupported variant or version. It is not
// meant for the caller: answer every refusal with the same text, so that a
// caller cannot tell a wrong UUID from a wrong secret.
var ErrUnauthorized = errors.New("unauthorized")

// ErrBusy is wrapped when no verification slot became free within
// Limits.MaxWait or before the context was done (or a verification of the
// same header in progress did not finish by then), and when Limits.MaxQueue
// callers were already waiting. It is not a refusal of the header: the caller may retry (an
// HTTP layer answers 503 with Retry-After). A wait that ran out also wraps
// the context's error.
var ErrBusy = errors.New("authorization busy")

// refuse returns an error wrapping ErrUnauthorized whose message continues
// with the reason.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, fmt.Sprintf(format, args...))
}

// busy returns an error wrapping ErrBusy and the context's error.
func busy(waiting string, cause error) error {
	return fmt.Errorf("%w: %s: %w", ErrBusy, waiting, cause)
}
