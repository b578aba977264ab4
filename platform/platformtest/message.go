package platformtest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/segmentio/asm/base64"
	"slices"
	"sort"
)

// Message kinds.
const (
	kindStart    = "start"
	kindChunk    = "chunk"
	kindFinished = "finished"
)

// message is one parsed /submit body.
type message struct {
	kind  string
	trace string
	no    int64
	data  []byte // decoded chunk bytes
	fin   FinishedMsg
	// Which optional finished fields were present.
	hasChunks, hasBytes, hasSHA256 bool
}

var b64Std = base64.StdEncoding.Strict()

// allowed keys per message kind.
var allowedKeys = map[string][]string{
	kindStart:    {"status", "trace"},
	kindChunk:    {"field", "no", "trace"},
	kindFinished: {"bytes", "chunks", "code", "lostEvents", "reason", "sha256", "status", "stderr", "trace"},
}

// parseMessage decodes and type-checks a /submit body.
func parseMessage(body []byte) (*message, error) {
	fields, err := parseFlat(body)
	if err != nil {
		return nil, fmt.Errorf("decoding JSON object: %w", err)
	}
	m := &message{}
	if err := getString(fields, "trace", &m.trace, true); err != nil {
		return nil, err
	}
	if m.trace == "" {
		return nil, fmt.Errorf(`field "trace" is empty`)
	}
	var status string
	if err := getString(fields, "status", &status, false); err != nil {
		return nil, err
	}
	_, hasNo := fields["no"]
	switch {
	case status == "start":
		m.kind = kindStart
	case status == "finished":
		m.kind = kindFinished
	case status != "":
		return nil, fmt.Errorf(`unknown "status" %q`, status)
	case hasNo:
		m.kind = kindChunk
	default:
		return nil, fmt.Errorf(`neither "status" nor "no": unknown message`)
	}
	if err := checkKeys(fields, allowedKeys[m.kind]); err != nil {
		return nil, fmt.Errorf("checking %s message: %w", m.kind, err)
	}
	switch m.kind {
	case kindChunk:
		err = m.parseChunk(fields)
	case kindFinished:
		err = m.parseFinished(fields, status)
	}
	if err != nil {
		return nil, fmt.Errorf("checking %s message: %w", m.kind, err)
	}
	return m, nil
}

func (m *message) parseChunk(fields map[string]json.RawMessage) error {
	if err := getInt(fields, "no", &m.no, true); err != nil {
		return err
	}
	if m.no < 0 {
		return fmt.Errorf(`"no" %d is negative`, m.no)
	}
	raw, ok := fields["field"]
	if !ok {
		return fmt.Errorf(`missing "field"`)
	}
	var enc []byte
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		enc = raw[1 : len(raw)-1] // no escapes: the literal is the text
	} else {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf(`"field" is not a string: %w`, err)
		}
		enc = []byte(s)
	}
	m.data = make([]byte, b64Std.DecodedLen(len(enc)))
	n, err := b64Std.Decode(m.data, enc)
	if err != nil {
		return fmt.Errorf(`decoding "field" base64: %w`, err)
	}
	m.data = m.data[:n]
	if b64Std.EncodedLen(n) != len(enc) {
		return fmt.Errorf(`decoding "field" base64: not canonical padded standard base64 (line breaks?)`)
	}
	return nil
}

func (m *message) parseFinished(fields map[string]json.RawMessage, status string) error {
	f := &m.fin
	f.Trace, f.Status = m.trace, status
	if err := getString(fields, "stderr", &f.Stderr, true); err != nil {
		return err
	}
	var code int64
	if err := getInt(fields, "code", &code, true); err != nil {
		return err
	}
	f.Code = int(code)
	if err := getString(fields, "reason", &f.Reason, false); err != nil {
		return err
	}
	_, m.hasChunks = fields["chunks"]
	if err := getInt(fields, "chunks", &f.Chunks, false); err != nil {
		return err
	}
	_, m.hasBytes = fields["bytes"]
	if err := getInt(fields, "bytes", &f.Bytes, false); err != nil {
		return err
	}
	if err := getInt(fields, "lostEvents", &f.LostEvents, false); err != nil {
		return err
	}
	if f.LostEvents < 0 {
		return fmt.Errorf(`"lostEvents" %d is negative`, f.LostEvents)
	}
	_, m.hasSHA256 = fields["sha256"]
	if err := getString(fields, "sha256", &f.SHA256, false); err != nil {
		return err
	}
	if m.hasSHA256 {
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf(`"sha256" %q is not 64 hex digits`, f.SHA256)
		}
	}
	return nil
}

// checkKeys refuses keys outside allowed.
func checkKeys(fields map[string]json.RawMessage, allowed []string) error {
	var extra []string
	for k := range fields {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("unknown fields %q", extra)
	}
	return nil
}

// getString decodes fields[key] into *dst; a JSON string is required.
func getString(fields map[string]json.RawMessage, key string, dst *string, required bool) error {
	raw, ok := fields[key]
	if !ok {
		if required {
			return fmt.Errorf("missing %q", key)
		}
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%q is not a string: %s", key, clip(raw))
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decoding %q: %w", key, err)
	}
	return nil
}

// getInt decodes fields[key] into *dst; a JSON integer is required.
func getInt(fields map[string]json.RawMessage, key string, dst *int64, required bool) error {
	raw, ok := fields[key]
	if !ok {
		if required {
			return fmt.Errorf("missing %q", key)
		}
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil || raw[0] == 'n' {
		return fmt.Errorf("%q is not an integer: %s", key, clip(raw))
	}
	return nil
}

// clip shortens raw JSON for messages.
func clip(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
