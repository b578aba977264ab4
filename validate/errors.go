package validate

import (
	"errors"
	"strconv"
)

// ErrInvalid is matched (errors.Is) by every error this package returns for
// a refused input.
var ErrInvalid = errors.New("invalid template")

// FieldError reports why one field of a template was refused. Field names
// the field as the API spells it, with an index for list elements
// ("functions[2]", "options[0]", "environment[1]", "value[1]").
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "<field>: <reason>".
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalid, so that errors.Is(err, ErrInvalid)
// holds for every FieldError.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid
}

// indexed names element i of the list field.
func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// maxQuoted is how much of a refused value an error message repeats.
const maxQuoted = 64

// quote returns v Go-quoted (control and non-ASCII characters escaped) for
// an error message, cut to maxQuoted bytes.
func quote(v string) string {
	if len(v) <= maxQuoted {
		return strconv.QuoteToASCII(v)
	}
	return strconv.QuoteToASCII(v[:maxQuoted]) + "... (" + strconv.Itoa(len(v)) + " bytes)"
}
