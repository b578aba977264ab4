package cli

import (
	"flag"
	"sort"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/config"
)

// closest returns the candidate nearest to typed, or "" when none is
// near enough to be what was meant: within an edit distance of 2 (1 for
// a name of two letters), or the one candidate that typed begins (of 3
// letters or more). Letter case does not count.
func closest(typed string, candidates []string) string {
	t := strings.ToLower(typed)
	if t == "" || len(t) > 64 {
		return ""
	}
	maxDist := min(2, len(t)-1)
	best, bestDist := "", maxDist+1
	var prefixed []string
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if d := config.EditDistance(t, lc); d < bestDist {
			best, bestDist = c, d
		}
		if len(t) >= 3 && strings.HasPrefix(lc, t) {
			prefixed = append(prefixed, c)
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// flagNames are the names of fs's flags, sorted.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}

// undefinedFlag returns the name in a flag package "not defined" error.
func undefinedFlag(err error) (string, bool) {
	return strings.CutPrefix(err.Error(), "flag provided but not defined: -")
}

// flagError is the line that explains a flag parse error of fs, with the
// closest flag for an unknown one: "unknown flag --templat: did you mean
// --template?".
func flagError(fs *flag.FlagSet, err error) string {
	name, ok := undefinedFlag(err)
	if !ok {
		return err.Error()
	}
	msg := "unknown flag --" + name
	if c := closest(name, flagNames(fs)); c != "" {
		msg += ": did you mean --" + c + "?"
	}
	return msg
}
