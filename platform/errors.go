package platform

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalid is wrapped by New's errors: the base URL, the Authorization
// value or an option is unusable.
var ErrInvalid = errors.New("invalid platform client configuration")

// StatusError reports a non-2xx answer of the platform. The Client retries
// it; callers see it in Options.OnRetry and wrapped in the error a call
// returns when its context ends (use errors.As).
type StatusError struct {
	// StatusCode is the HTTP status the platform answered.
	StatusCode int
	// Body is the start of the answer's body, for diagnostics.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("platform answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("platform answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Body)
}
