package validate

import (
	"fmt"
	"path"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// DefaultMaxLasting is the longest trace Lasting accepts when no maximum is
// configured: one day.
const DefaultMaxLasting = 24 * time.Hour

// Rules holds the operator-configurable parts of the allow-lists.
type Rules struct {
	// EnvAllow lists, per tracer, the glob patterns (path.Match syntax, such
	// as "BPFTRACE_*") an environment variable name must match.
	EnvAllow map[messages.TraceType][]string
	// AllowUnsafeOptions accepts any tracer option (the operator's
	// allow-unsafe-options switch). Off by default.
	AllowUnsafeOptions bool
}

// DefaultRules returns the default rules: BPFTRACE_* for BPF, SYSTEMTAP_*
// for STAP, unsafe options refused. Each call returns fresh maps.
func DefaultRules() Rules {
	return Rules{
		EnvAllow: map[messages.TraceType][]string{
			messages.BPF:  {"BPFTRACE_*"},
			messages.STAP: {"SYSTEMTAP_*"},
		},
	}
}

// Validate checks the rules themselves, for a configuration loader: every
// EnvAllow key is BPF or STAP and every pattern is a well-formed path.Match
// pattern. Its errors do not match ErrInvalid.
func (r Rules) Validate() error {
	for t, patterns := range r.EnvAllow {
		if t != messages.BPF && t != messages.STAP {
			return fmt.Errorf("checking environment allow-list: unknown tracer type %q", t)
		}
		for _, p := range patterns {
			if p == "" {
				return fmt.Errorf("checking environment allow-list for %s: empty pattern", t)
			}
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("checking environment allow-list for %s: pattern %q: %w", t, p, err)
			}
		}
	}
	return nil
}
