package validate

import (
	"path/filepath"
	"strings"
)

// Limits on a process path.
const (
	maxPathLen      = 4096
	maxComponentLen = 255
)

// processChars describes the process alphabet in error messages.
const processChars = "[A-Za-z0-9/._+@,~=-]"

// Process checks the path of the binary to trace: absolute, clean, at most
// 4096 bytes and made only of letters, digits and / . _ - + @ , ~ =. It does
// not look at the file system. A refusal is a *FieldError for "process".
func Process(p string) error {
	if reason := checkProcess(p); reason != "" {
		return &FieldError{Field: "process", Reason: reason}
	}
	return nil
}

// checkProcess returns why p is refused, or "".
func checkProcess(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > maxPathLen:
		return quote(p) + " is longer than 4096 bytes"
	case !onlyBytes(p, isProcessByte):
		return quote(p) + " has characters outside " + processChars
	case !strings.HasPrefix(p, "/"):
		return quote(p) + " is not an absolute path"
	case filepath.Clean(p) != p:
		return quote(p) + " is not a clean path (it should be " + quote(filepath.Clean(p)) + ")"
	}
	for rest := p[1:]; rest != ""; {
		c, after, _ := strings.Cut(rest, "/")
		if len(c) > maxComponentLen {
			return quote(p) + " has a component longer than 255 bytes"
		}
		rest = after
	}
	return ""
}

// isProcessByte reports whether b may appear in a process path.
func isProcessByte(b byte) bool {
	if isAlnum(b) {
		return true
	}
	switch b {
	case '/', '.', '_', '-', '+', '@', ',', '~', '=':
		return true
	}
	return false
}

// isAlnum reports whether b is an ASCII letter or digit.
func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// onlyBytes reports whether every byte of s satisfies ok. Working on bytes
// refuses every non-ASCII character, homoglyphs included.
func onlyBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
