package validate

import (
	"errors"
	"strconv"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Template checks every field of info against r: trace type, process,
// functions, environment and options. It returns nil, or the first refusal
// of each refused field group (errors.Join of *FieldError values when more
// than one group is refused). Every error matches ErrInvalid.
func Template(info messages.TemplateInfo, r Rules) error {
	var errs []error
	if info.TraceType != messages.BPF && info.TraceType != messages.STAP {
		errs = append(errs, &FieldError{Field: "traceType", Reason: quote(string(info.TraceType)) + ` is not "BPF" or "STAP"`})
	}
	for _, err := range []error{
		Process(info.Process),
		Functions(info.TraceType, info.Functions),
		Environment(info.TraceType, info.Environment, info.Value, r),
		Options(info.TraceType, info.Options, r.AllowUnsafeOptions),
	} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// TraceType parses a trace type in any letter case ("bpf", "Stap") into
// messages.BPF or messages.STAP. A refusal is a *FieldError for "traceType".
func TraceType(s string) (messages.TraceType, error) {
	switch asciiUpper(s) {
	case string(messages.BPF):
		return messages.BPF, nil
	case string(messages.STAP):
		return messages.STAP, nil
	}
	return "", &FieldError{Field: "traceType", Reason: quote(s) + ` is not "BPF" or "STAP"`}
}

// asciiUpper upper-cases the ASCII letters of s and nothing else, so that
// look-alikes such as "ſtap" (long s) do not fold into a trace type.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Lasting checks a trace duration in seconds: from 1 to max (whole seconds;
// DefaultMaxLasting when max is not positive). A refusal is a *FieldError
// for "lasting".
func Lasting(seconds int64, max time.Duration) error {
	if max <= 0 {
		max = DefaultMaxLasting
	}
	limit := int64(max / time.Second)
	if seconds < 1 || seconds > limit {
		return &FieldError{Field: "lasting", Reason: strconv.FormatInt(seconds, 10) +
			" is outside 1.." + strconv.FormatInt(limit, 10) + " seconds"}
	}
	return nil
}
