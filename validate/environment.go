package validate

import (
	"strconv"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Limits on the environment.
const (
	maxEnv         = 64
	maxEnvNameLen  = 256
	maxEnvValueLen = 4096
)

// Environment checks the variables a template gives its tracer t: names and
// values of equal length (at most 64), each name a shell-style identifier
// that r.EnvAllow[t] allows (an exact entry, else the first matching
// pattern in name order), each value at most 4096 bytes without NUL,
// newline or carriage return and of the kind the entry gives it. A refusal
// is a *FieldError for "environment", "environment[i]" or "value[i]".
func Environment(t messages.TraceType, names, values []string, r Rules) error {
	switch {
	case len(names) != len(values):
		return &FieldError{Field: "environment", Reason: "has " + strconv.Itoa(len(names)) +
			" names but value has " + strconv.Itoa(len(values)) + " entries; they must pair up"}
	case len(names) > maxEnv:
		return &FieldError{Field: "environment", Reason: "has " + strconv.Itoa(len(names)) + " variables, more than 64"}
	}
	table := r.EnvAllow[t]
	kinds := make([]EnvKind, len(names))
	for i, name := range names {
		k, reason := checkEnvName(name, t, table)
		if reason != "" {
			return &FieldError{Field: indexed("environment", i), Reason: reason}
		}
		kinds[i] = k
	}
	for i, v := range values {
		if reason := checkEnvValue(v); reason != "" {
			return &FieldError{Field: indexed("value", i), Reason: reason}
		}
		if reason := kinds[i].check(v); reason != "" {
			return &FieldError{Field: indexed("value", i), Reason: quote(v) + " is not a valid value of " +
				names[i] + ": " + reason}
		}
	}
	return nil
}

// checkEnvName returns the kind of name for tracer t, or why it is refused.
func checkEnvName(name string, t messages.TraceType, table EnvTable) (EnvKind, string) {
	switch {
	case name == "":
		return EnvKind{}, "is empty"
	case len(name) > maxEnvNameLen:
		return EnvKind{}, quote(name) + " is longer than 256 bytes"
	case !isIdentifier(name):
		return EnvKind{}, quote(name) + " is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
	}
	if k, ok := table.Lookup(name); ok {
		return k, ""
	}
	if len(table) == 0 {
		return EnvKind{}, quote(name) + " is not allowed for " + string(t) + " (no variables are allowed)"
	}
	return EnvKind{}, quote(name) + " is not allowed for " + string(t) + " (allowed: " + table.String() + ")"
}

// isIdentifier reports whether s matches ^[A-Za-z_][A-Za-z0-9_]*$.
func isIdentifier(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '_' || isAlnum(b) && (i > 0 || b > '9') {
			continue
		}
		return false
	}
	return s != ""
}

// checkEnvValue returns why v is refused whatever its kind, or "".
func checkEnvValue(v string) string {
	switch {
	case len(v) > maxEnvValueLen:
		return quote(v) + " is longer than 4096 bytes"
	case strings.ContainsAny(v, "\x00\n\r"):
		return quote(v) + " contains a NUL, newline or carriage return"
	}
	return ""
}
