package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// httpError is a refusal whose status the handler decided. Its text is the
// error body (after whatever context wraps it); it adds no prefix of its own.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// withStatus marks err to be answered with status.
func withStatus(status int, err error) error { return &httpError{status: status, err: err} }

// badRequest returns a 400 refusal; format may use %w.
func badRequest(format string, args ...any) error {
	return withStatus(http.StatusBadRequest, fmt.Errorf(format, args...))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(text))
}

type errorBody struct {
	Error string `json:"error"`
}

// writeError answers {"error": msg}, without escaping <, > and & (the
// body is JSON, served with nosniff, and stays readable in a terminal).
func writeError(w http.ResponseWriter, status int, msg string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(errorBody{Error: msg}) // a string cannot fail to encode; Encode adds the newline
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// statusOf maps an error from decoding, the store or the runtime to its
// HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, actors.ErrInvalid), errors.Is(err, actors.ErrBinaryMissing):
		return http.StatusBadRequest
	case errors.Is(err, persistence.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, actors.ErrTooManyTraces):
		return http.StatusTooManyRequests
	case errors.Is(err, persistence.ErrUnavailable), errors.Is(err, actors.ErrTimeout), errors.Is(err, actors.ErrShuttingDown):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // actors.ErrTracerMissing among others
}

// writeFailure answers err with its status (statusOf) and its text, and
// hands err to the access log line of the request.
func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if rec, ok := w.(*recorder); ok {
		rec.err = err
	}
	writeError(w, status, err.Error())
}
