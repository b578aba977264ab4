package platformtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The /submit messages are flat JSON objects of strings and numbers. A
// 50 KB chunk body scanned three times by encoding/json would make the
// receiver the bottleneck of every throughput test, so parseFlat splits
// the object itself, finding string ends with a vectorised search, and
// leaves checking each value to its consumer (getString and getInt run
// encoding/json on the small values; the large base64 field is checked by
// strict base64 decoding).

var errNested = errors.New("nested objects and arrays are not part of the protocol")

// parseFlat splits a flat JSON object into its members' raw values.
// Duplicate keys, nested values and trailing data are refused.
func parseFlat(b []byte) (map[string]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, fmt.Errorf("want a JSON object")
	}
	fields := make(map[string]json.RawMessage, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return fields, trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, fmt.Errorf("offset %d: want a member name", i)
		}
		end, err := stringEnd(b, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return nil, fmt.Errorf("offset %d: decoding member name: %w", i, err)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("duplicate member %q", key)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, fmt.Errorf("offset %d: want ':' after %q", i, key)
		}
		i = skipSpace(b, i+1)
		if end, err = valueEnd(b, i); err != nil {
			return nil, fmt.Errorf("member %q: %w", key, err)
		}
		fields[key] = b[i:end:end]
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, fmt.Errorf("unexpected end of JSON")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return fields, trailing(b, i+1)
		default:
			return nil, fmt.Errorf("offset %d: want ',' or '}'", i)
		}
	}
}

func trailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return fmt.Errorf("offset %d: data after the object", i)
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset after the string literal starting at
// b[i] == '"'. Its content is not checked.
func stringEnd(b []byte, i int) (int, error) {
	rest := b[i+1:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return 0, fmt.Errorf("offset %d: unterminated string", i)
	}
	if bytes.IndexByte(rest[:q], '\\') < 0 {
		return i + 1 + q + 1, nil
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("offset %d: unterminated string", i)
}

// valueEnd returns the offset after the scalar value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("missing value")
	}
	switch c := b[i]; {
	case c == '"':
		return stringEnd(b, i)
	case c == '{' || c == '[':
		return 0, errNested
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if !json.Valid(b[i:j]) {
			return 0, fmt.Errorf("offset %d: malformed number %q", i, b[i:j])
		}
		return j, nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(b[i:], []byte(lit)) {
				return i + len(lit), nil
			}
		}
		return 0, fmt.Errorf("offset %d: invalid value", i)
	}
}
