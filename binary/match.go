package binary

import (
	"sort"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// pattern is a template function name as the tracer t reads it: for
// SystemTap the "function@file" qualifier is cut off (it narrows by source
// file, which the symbol tables do not record), and "?" is a wildcard only
// for SystemTap (bpftrace 0.17 knows "*" alone; package validate refuses
// "?" for BPF).
func pattern(t messages.TraceType, f string) string {
	if t == messages.STAP {
		f, _, _ = strings.Cut(f, "@")
	}
	return f
}

// hasWildcard reports whether p has a wildcard for tracer t.
func hasWildcard(t messages.TraceType, p string) bool {
	if t == messages.STAP {
		return strings.ContainsAny(p, "*?")
	}
	return strings.Contains(p, "*")
}

// maxMatchSteps bounds the work of expanding one template's wildcards
// (steps of glob): well under a second of CPU. Real templates need a few
// million at most; 256 pathological patterns against a large binary would
// need 10^11.
const maxMatchSteps = 50_000_000

// matches counts the names of the sorted list names that pattern p matches
// for tracer t, adding the matcher's steps to *steps; it stops early once
// *steps exceeds maxMatchSteps.
func matches(t messages.TraceType, p string, names []string, steps *int64) int {
	return eachMatch(t, p, names, steps, nil)
}

// Match returns the names of the sorted list names that the template
// function p matches for tracer t (a name, or a wildcard: "*", and "?" for
// SystemTap), in order, as the preflight expands it; for other packages
// that resolve a template's functions (the native engine). A pattern too
// costly to expand (see Checker.Check) matches what was found before the
// bound.
func Match(t messages.TraceType, p string, names []string) []string {
	var out []string
	var steps int64
	eachMatch(t, pattern(t, p), names, &steps, func(n string) { out = append(out, n) })
	return out
}

// eachMatch is matches, calling found (when not nil) with each match.
func eachMatch(t messages.TraceType, p string, names []string, steps *int64, found func(string)) int {
	if !hasWildcard(t, p) {
		i := sort.SearchStrings(names, p)
		if i < len(names) && names[i] == p {
			if found != nil {
				found(p)
			}
			return 1
		}
		return 0
	}
	question := t == messages.STAP
	// Names sort by their literal prefix: only that range can match.
	prefix := p[:strings.IndexAny(p, wildcardsOf(t))]
	lo := sort.SearchStrings(names, prefix)
	n := 0
	for _, name := range names[lo:] {
		if !strings.HasPrefix(name, prefix) {
			break
		}
		if *steps > maxMatchSteps {
			break
		}
		if globSteps(p, name, question, steps) {
			n++
			if found != nil {
				found(name)
			}
		}
	}
	return n
}

func wildcardsOf(t messages.TraceType) string {
	if t == messages.STAP {
		return "*?"
	}
	return "*"
}

// glob reports whether name matches the whole pattern p: "*" matches any
// run of bytes (empty too) and, when question is set, "?" any one byte;
// every other byte matches itself. Linear backtracking over the last "*",
// so no pattern takes more than len(p)*len(name) steps.
func glob(p, name string, question bool) bool {
	var steps int64
	return globSteps(p, name, question, &steps)
}

// globSteps is glob, adding its number of steps to *steps.
func globSteps(p, name string, question bool, steps *int64) bool {
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(name) {
		*steps++
		switch {
		case pi < len(p) && (p[pi] == name[ni] && p[pi] != '*' && !(question && p[pi] == '?') ||
			question && p[pi] == '?'):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
