package validate

import (
	"path"
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
// that matches one of r.EnvAllow[t], each value at most 4096 bytes without
// NUL, newline or carriage return. A refusal is a *FieldError for
// "environment", "environment[i]" or "value[i]".
func Environment(t messages.TraceType, names, values []string, r Rules) error {
	switch {
	case len(names) != len(values):
		return &FieldError{Field: "environment", Reason: "has " + strconv.Itoa(len(names)) +
			" names but value has " + strconv.Itoa(len(values)) + " entries; they must pair up"}
	case len(names) > maxEnv:
		return &FieldError{Field: "environment", Reason: "has " + strconv.Itoa(len(names)) + " variables, more than 64"}
	}
	allow := r.EnvAllow[t]
	for i, name := range names {
		if reason := checkEnvName(name, t, allow); reason != "" {
			return &FieldError{Field: indexed("environment", i), Reason: reason}
		}
	}
	for i, v := range values {
		if reason := checkEnvValue(v); reason != "" {
			return &FieldError{Field: indexed("value", i), Reason: reason}
		}
	}
	return nil
}

// checkEnvName returns why name is refused for tracer t, or "".
func checkEnvName(name string, t messages.TraceType, allow []string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxEnvNameLen:
		return quote(name) + " is longer than 256 bytes"
	case !isIdentifier(name):
		return quote(name) + " is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
	}
	for _, p := range allow {
		if ok, err := path.Match(p, name); ok && err == nil {
			return ""
		}
	}
	if len(allow) == 0 {
		return quote(name) + " is not allowed for " + string(t) + " (no variables are allowed)"
	}
	return quote(name) + " is not allowed for " + string(t) + " (allowed: " + strings.Join(allow, ", ") + ")"
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

// checkEnvValue returns why v is refused, or "".
func checkEnvValue(v string) string {
	switch {
	case len(v) > maxEnvValueLen:
		return quote(v) + " is longer than 4096 bytes"
	case strings.ContainsAny(v, "\x00\n\r"):
		return quote(v) + " contains a NUL, newline or carriage return"
	}
	return ""
}
