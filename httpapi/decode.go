package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Decoding errors; writeFailure maps them to 400, 415 and 413.
var (
	errBadRequest       = errors.New("bad request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errTooLarge         = errors.New("request body too large")
)

func badRequest(format string, args ...interface{}) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// readBody returns the request body: Content-Type must be
// application/json and the body at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: Content-Type must be application/json", errUnsupportedMedia)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: limit is %d bytes", errTooLarge, max)
		}
		return nil, badRequest("reading body: %v", err)
	}
	return body, nil
}

// readJSON decodes the request body into v (see readBody and decodeStrict).
func readJSON(w http.ResponseWriter, r *http.Request, max int64, v interface{}) error {
	body, err := readBody(w, r, max)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(body []byte, v interface{}) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON: more than one value in the body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON: trailing data after the value")
	}
	return nil
}

// traceTypeField is a trace type as the seed sends it: "BPF", "stap", or a
// one-element array ["BPF"], in any letter case. It keeps the raw value so
// that parse can name the field in its error.
type traceTypeField struct {
	raw json.RawMessage
}

func (t *traceTypeField) UnmarshalJSON(b []byte) error {
	t.raw = append(t.raw[:0], b...)
	return nil
}

// parse returns the trace type; field names the JSON key in errors.
func (t traceTypeField) parse(field string) (messages.TraceType, error) {
	if len(t.raw) == 0 || string(t.raw) == "null" {
		return "", badRequest("%s: missing", field)
	}
	var s string
	if err := json.Unmarshal(t.raw, &s); err != nil {
		var list []string
		if err := json.Unmarshal(t.raw, &list); err != nil || len(list) != 1 {
			return "", badRequest(`%s: must be "BPF" or "STAP" (or a one-element array of either)`, field)
		}
		s = list[0]
	}
	typ, err := validate.TraceType(s)
	if err != nil {
		return "", badRequest("%s: %v", field, err)
	}
	return typ, nil
}

// templateRequest is the body of PUT /trace. The seed spells functions
// "funtions"; both are accepted.
type templateRequest struct {
	Process     *string        `json:"process"`
	Functions   *[]string      `json:"functions"`
	Funtions    *[]string      `json:"funtions"`
	Environment *[]string      `json:"environment"`
	Value       *[]string      `json:"value"`
	Options     *[]string      `json:"options"`
	TraceType   traceTypeField `json:"traceType"`
}

// decodeTemplate turns a PUT /trace body into a TemplateInfo. It checks
// shape only; validate.Template checks content.
func decodeTemplate(body []byte) (messages.TemplateInfo, error) {
	var req templateRequest
	if err := decodeStrict(body, &req); err != nil {
		return messages.TemplateInfo{}, err
	}
	if req.Process == nil {
		return messages.TemplateInfo{}, badRequest("process: missing")
	}
	fns := req.Functions
	if fns == nil {
		fns = req.Funtions
	} else if req.Funtions != nil && !equal(*req.Functions, *req.Funtions) {
		return messages.TemplateInfo{}, badRequest("functions: both functions and funtions given, and they differ")
	}
	if fns == nil {
		return messages.TemplateInfo{}, badRequest("functions: missing")
	}
	typ, err := req.TraceType.parse("traceType")
	if err != nil {
		return messages.TemplateInfo{}, err
	}
	return messages.TemplateInfo{
		Process:     *req.Process,
		Functions:   *fns,
		Environment: orEmpty(req.Environment),
		Value:       orEmpty(req.Value),
		Options:     orEmpty(req.Options),
		TraceType:   typ,
	}, nil
}

func orEmpty(p *[]string) []string {
	if p == nil || *p == nil {
		return []string{}
	}
	return *p
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// startRequest is the body of POST /trace/start. Mode is an extension.
type startRequest struct {
	TraceT  traceTypeField `json:"traceT"`
	TraceID *int64         `json:"traceId"`
	Lasting *int64         `json:"lasting"`
	Mode    *string        `json:"mode"`
}

// removeRequest is the body of POST /trace/remove.
type removeRequest struct {
	RemoveType traceTypeField `json:"removeType"`
	RemoveID   *int64         `json:"removeId"`
}

// killRequest is the body of POST /trace/kill.
type killRequest struct {
	KillPath *string `json:"killPath"`
}
