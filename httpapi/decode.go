package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// readBody returns the request body: Content-Type must be application/json
// (a charset parameter, if any, utf-8 in any case: 415 otherwise), the body
// at most max bytes (413) and valid UTF-8 (400).
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, withStatus(http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json"))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, withStatus(http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type charset must be utf-8, got %.32q", cs))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, withStatus(http.StatusRequestEntityTooLarge, fmt.Errorf("request body too large: the limit is %d bytes", max))
		}
		return nil, badRequest("reading body: %w", err)
	}
	if !utf8.Valid(body) {
		return nil, badRequest("body is not valid UTF-8")
	}
	return body, nil
}

// readJSON decodes the request body into v (see readBody and decodeStrict).
func readJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	body, err := readBody(w, r, max)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes exactly one JSON object into v, a pointer to a
// request struct, so that a body has exactly one meaning: its keys must be
// the json tags of v's fields spelled exactly (encoding/json alone would
// match "PROCESS" to "process"), no key may appear twice in any object
// (encoding/json alone keeps the last), and values must have the fields'
// types. Errors are bad requests that name the key and never a Go type.
func decodeStrict(body []byte, v any) error {
	if err := checkKeys(body, fieldNames(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // checkKeys refused them already; belt and braces
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// checkKeys scans body as a token stream: one JSON object and nothing
// after it, top-level keys among known, no duplicate key in any object.
func checkKeys(body []byte, known map[string]bool) error {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) == 0 {
				return badRequest("malformed JSON: the body is empty")
			}
			return badRequest("malformed JSON: the body ends inside a value")
		}
		if err != nil {
			return jsonError(err)
		}
		if len(stack) == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return badRequest("malformed JSON: the body must be a JSON object")
			}
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
			} else {
				key := tok.(string) // the decoder allows only strings here
				if top.keys[key] {
					return badRequest("%.64q: key given twice", key)
				}
				top.keys[key] = true
				if len(stack) == 1 && !known[key] {
					return unknownKey(key, known)
				}
				top.wantKey = false
			}
		} else {
			if top != nil && top.object {
				top.wantKey = true // after this value comes a key or '}'
			}
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]bool{}})
			case json.Delim('['):
				stack = append(stack, &frame{})
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) == 0 {
			if _, err := dec.Token(); err != io.EOF {
				return badRequest("malformed JSON: data after the object")
			}
			return nil
		}
	}
}

// unknownKey refuses key, pointing at the known key it differs from only
// in letter case.
func unknownKey(key string, known map[string]bool) error {
	for k := range known {
		if strings.EqualFold(k, key) {
			return badRequest("%.64q: unknown key (keys are case-sensitive: did you mean %q?)", key, k)
		}
	}
	return badRequest("%.64q: unknown key", key)
}

// fieldNames returns the json tag names of the struct v points to.
func fieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

// fieldKinds describes, for error messages, what each request key holds.
var fieldKinds = map[string]string{
	"lasting":     "an integer number of seconds",
	"traceId":     "an integer template id",
	"removeId":    "an integer template id",
	"process":     "a string",
	"killPath":    "a string",
	"mode":        "a string",
	"engine":      "a string",
	"functions":   "an array of strings",
	"funtions":    "an array of strings",
	"environment": "an array of strings",
	"value":       "an array of strings",
	"options":     "an array of strings",
}

// jsonError turns an encoding/json error into a bad request that names the
// key and says what it must hold, without Go type names.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		want := fieldKinds[field]
		if want == "" {
			want = "of another type"
		}
		got := jsonValueKind(typeErr.Value)
		if strings.HasPrefix(want, "an array") && typeErr.Type != nil && typeErr.Type.Kind() != reflect.Slice {
			got = "an array holding " + got
		}
		if field == "" {
			return badRequest("malformed JSON: the body must be a JSON object")
		}
		return badRequest("%s: must be %s, got %s", field, want, got)
	case errors.As(err, &syntaxErr):
		return badRequest("malformed JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the body ends inside a value")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if k, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return badRequest("%s: unknown key", k)
	}
	return badRequest("malformed JSON: %s", msg)
}

// jsonValueKind phrases UnmarshalTypeError.Value ("string", "number 3.5").
func jsonValueKind(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return strings.TrimPrefix(v, "number ")
	case v == "bool":
		return "a boolean"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	}
	return v
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
		return "", badRequest(`%s: %.32q is not "BPF" or "STAP"`, field, s)
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
	} else if req.Funtions != nil {
		// Even equal lists are refused: a body has exactly one meaning.
		return messages.TemplateInfo{}, badRequest("functions: give functions or the seed's spelling funtions, not both")
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

// startRequest is the body of POST /trace/start. Mode and Engine are
// extensions; the runtime checks their values.
type startRequest struct {
	TraceT  traceTypeField `json:"traceT"`
	TraceID *int64         `json:"traceId"`
	Lasting *int64         `json:"lasting"`
	Mode    *string        `json:"mode"`
	Engine  *string        `json:"engine"`
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
