package validate

import (
	"strconv"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Limits on the functions list.
const (
	maxFunctions   = 256
	maxFunctionLen = 256
)

// functionChars describes the function alphabet in error messages.
const functionChars = "[A-Za-z0-9_.$@*?]"

// Function checks one function name: 1 to 256 bytes of letters, digits,
// _ . $ @ and the wildcards * and ?. A refusal is a *FieldError for
// "function".
func Function(f string) error {
	if reason := checkFunction(f); reason != "" {
		return &FieldError{Field: "function", Reason: reason}
	}
	return nil
}

// Functions checks a template's functions list for tracer t: one to 256
// names, each accepted by Function, and no "?" wildcard for BPF (bpftrace
// does not know it). A refusal is a *FieldError for "functions" or
// "functions[i]".
func Functions(t messages.TraceType, fs []string) error {
	switch {
	case len(fs) == 0:
		return &FieldError{Field: "functions", Reason: "is empty: name at least one function"}
	case len(fs) > maxFunctions:
		return &FieldError{Field: "functions", Reason: "has " + strconv.Itoa(len(fs)) + " names, more than 256"}
	}
	for i, f := range fs {
		if reason := checkFunction(f); reason != "" {
			return &FieldError{Field: indexed("functions", i), Reason: reason}
		}
		if t == messages.BPF && strings.Contains(f, "?") {
			return &FieldError{Field: indexed("functions", i),
				Reason: quote(f) + ` uses the "?" wildcard, which bpftrace does not support (it would probe nothing); use "*"`}
		}
	}
	return nil
}

// checkFunction returns why f is refused, or "".
func checkFunction(f string) string {
	switch {
	case f == "":
		return "is empty"
	case len(f) > maxFunctionLen:
		return quote(f) + " is longer than 256 bytes"
	case !onlyBytes(f, isFunctionByte):
		return quote(f) + " has characters outside " + functionChars
	}
	return ""
}

// isFunctionByte reports whether b may appear in a function name.
func isFunctionByte(b byte) bool {
	if isAlnum(b) {
		return true
	}
	switch b {
	case '_', '.', '$', '@', '*', '?':
		return true
	}
	return false
}
