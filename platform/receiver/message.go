package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/segmentio/asm/base64"
	"path"
	"strings"
)

// Kind is the kind of one /submit message.
type Kind int

// Message kinds, in the order a trace sends them.
const (
	Start Kind = iota + 1
	Chunk
	Finished
)

func (k Kind) String() string {
	switch k {
	case Start:
		return "start"
	case Chunk:
		return "chunk"
	case Finished:
		return "finished"
	}
	return "unknown"
}

// Message is one parsed /submit body.
type Message struct {
	Kind  Kind
	Trace string // the "trace" field: the trace's path on the endpoint
	ID    string // the trace's id: Trace's base name without ".trace"
	No    int64  // Chunk: the "no" field
	Data  []byte // Chunk: the decoded "field"
	// Finished: the optional proof fields, with whether each was present.
	Chunks, Bytes       int64
	SHA256              string
	HasChunks, HasBytes bool
	Raw                 []byte // the body as received (kept for Finished)
}

// wire is the union of the message fields; pointers tell absent from zero.
type wire struct {
	Trace  *string          `json:"trace"`
	Status *string          `json:"status"`
	No     *json.RawMessage `json:"no"`
	Field  *string          `json:"field"`
	Stderr *string          `json:"stderr"`
	Code   *json.RawMessage `json:"code"`
	Chunks *json.RawMessage `json:"chunks"`
	Bytes  *json.RawMessage `json:"bytes"`
	SHA256 *string          `json:"sha256"`
}

var b64 = base64.StdEncoding.Strict()

// maxIDLen bounds a trace id (a file name: 255 bytes less the suffixes).
const maxIDLen = 200

// ParseMessage decodes a /submit body. Errors wrap ErrInvalid and say what
// is wrong in API terms. Unknown fields are refused in start and chunk
// messages; a finished message may carry extensions (it is stored as
// received).
func ParseMessage(body []byte) (Message, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Message{}, invalid("the body is not one JSON object with string, integer fields")
	}
	if dec.More() {
		return Message{}, invalid("the body holds more than one JSON value")
	}
	if w.Trace == nil || *w.Trace == "" {
		return Message{}, invalid(`missing "trace"`)
	}
	m := Message{Trace: *w.Trace, Raw: body}
	id, err := traceID(m.Trace)
	if err != nil {
		return Message{}, err
	}
	m.ID = id
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Message{}, invalid("the body is not a JSON object")
	}
	status := ""
	if w.Status != nil {
		status = *w.Status
	}
	switch {
	case status == "start":
		m.Kind = Start
		if err := onlyKeys(fields, "trace", "status"); err != nil {
			return Message{}, err
		}
	case status == "finished":
		m.Kind = Finished
		if w.Stderr == nil {
			return Message{}, invalid(`finished message: missing "stderr"`)
		}
		if w.Code == nil {
			return Message{}, invalid(`finished message: missing "code"`)
		}
		if _, err := integer("code", *w.Code); err != nil {
			return Message{}, err
		}
		if w.Chunks != nil {
			if m.Chunks, err = integer("chunks", *w.Chunks); err != nil {
				return Message{}, err
			}
			m.HasChunks = true
		}
		if w.Bytes != nil {
			if m.Bytes, err = integer("bytes", *w.Bytes); err != nil {
				return Message{}, err
			}
			m.HasBytes = true
		}
		if w.SHA256 != nil {
			m.SHA256 = strings.ToLower(*w.SHA256)
			if len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "" {
				return Message{}, invalid(`finished message: "sha256" is not 64 hex digits`)
			}
		}
	case status != "":
		return Message{}, invalid(fmt.Sprintf(`unknown "status" %q: want "start", "finished", or none for a chunk`, status))
	case w.No != nil:
		m.Kind = Chunk
		if err := onlyKeys(fields, "trace", "no", "field"); err != nil {
			return Message{}, err
		}
		if m.No, err = integer("no", *w.No); err != nil {
			return Message{}, err
		}
		if m.No < 0 {
			return Message{}, invalid(`chunk message: "no" is negative`)
		}
		if w.Field == nil {
			return Message{}, invalid(`chunk message: missing "field"`)
		}
		if m.Data, err = b64.DecodeString(*w.Field); err != nil {
			return Message{}, invalid(`chunk message: "field" is not padded standard base64`)
		}
	default:
		return Message{}, invalid(`neither "status" nor "no": not a start, chunk or finished message`)
	}
	return m, nil
}

// traceID derives the file name stem of a trace path, refusing one that
// could not be a safe file name.
func traceID(trace string) (string, error) {
	base := path.Base(trace)
	id := strings.TrimSuffix(base, ".trace")
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, ".") || len(id) > maxIDLen {
		return "", invalid(fmt.Sprintf(`"trace" %q: its base name must be <id>.trace with a non-empty id of at most %d bytes not starting with "."`, clip(trace), maxIDLen))
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", invalid(fmt.Sprintf(`"trace" %q: the id may hold only letters, digits, "-", "_" and "."`, clip(trace)))
		}
	}
	return id, nil
}

func integer(key string, raw json.RawMessage) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, invalid(fmt.Sprintf("%q is not an integer", key))
	}
	v, err := n.Int64()
	if err != nil {
		return 0, invalid(fmt.Sprintf("%q is not an integer", key))
	}
	return v, nil
}

func onlyKeys(fields map[string]json.RawMessage, allowed ...string) error {
	for k := range fields {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return invalid(fmt.Sprintf("unknown field %q (this message has only %s)", clip(k), strings.Join(allowed, ", ")))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ErrInvalid is wrapped by errors about a malformed message (HTTP 400).
var ErrInvalid = errors.New("invalid message")

// ErrProtocol is wrapped by errors about a well-formed message out of the
// protocol's order or contradicting what was acknowledged (HTTP 409).
var ErrProtocol = errors.New("protocol violation")

type msgError struct {
	kind error
	msg  string
}

func (e *msgError) Error() string        { return e.msg }
func (e *msgError) Is(target error) bool { return target == e.kind }

func invalid(msg string) error  { return &msgError{kind: ErrInvalid, msg: msg} }
func protocol(msg string) error { return &msgError{kind: ErrProtocol, msg: msg} }
