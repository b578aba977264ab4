package auth

import (
	"errors"
	"fmt"
)

// ErrUnauthorized is wrapped by every refusal of a header: missing, too long,
// malformed, unknown endpoint, unsupported variant or version, cost over
// limit, or hash mismatch. The wrapping error's message names the reason
// ("unauthorized: hash mismatch"); it never repeats the header, at most a
// short quoted prefix of an unsupported variant or version.
var ErrUnauthorized = errors.New("unauthorized")

// ErrBusy is wrapped when the context was done before a verification slot
// became free (or before a verification of the same header in progress
// finished). It is not a refusal of the header: the caller may retry (an
// HTTP layer answers 503). The error also wraps the context's error.
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
