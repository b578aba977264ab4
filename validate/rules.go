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
	// EnvAllow holds, per tracer, the environment variables a template may
	// set and the kind of their values. A tracer without a table allows
	// none.
	EnvAllow map[messages.TraceType]EnvTable
	// AllowUnsafeOptions accepts any tracer option (the operator's
	// allow-unsafe-options switch). Off by default.
	AllowUnsafeOptions bool
}

// DefaultEnv returns the built-in environment table of tracer t (fresh on
// each call). It holds only variables that are harmless with any value of
// their kind, all for bpftrace 0.17:
//
//   - BPFTRACE_STRLEN int:1..200: bytes of BPF stack per str() (bpftrace's
//     own maximum is 200);
//   - BPFTRACE_PERF_RB_PAGES pow2:1..256: perf ring buffer pages per CPU
//     (default 64 = 256 KiB per CPU; 256 = 1 MiB per CPU of locked memory);
//   - BPFTRACE_MAP_KEYS_MAX int:1..16384: keys per map (default 4096);
//   - BPFTRACE_NO_CPP_DEMANGLE, BPFTRACE_CACHE_USER_SYMBOLS,
//     BPFTRACE_NO_USER_SYMBOLS bool: symbol resolution of the output.
//
// SystemTap 4.8 has none: each of its variables names a path or a program
// (SYSTEMTAP_RELEASE, _STAPRUN, _RUNTIME, _TAPSET, _DIR, _DEBUGINFO_PATH,
// _STAPDYN, _STAPBPF), changes module signing (_SIGN, _NOSIGN) or writes
// files (_COVERAGE). Never defaults either: bpftrace's paths (BPFTRACE_BTF,
// _VMLINUX, _KERNEL_SOURCE, _KERNEL_BUILD), unbounded sizes
// (BPFTRACE_LOG_SIZE, _CAT_BYTES_MAX, _MAX_TYPE_RES_ITERATIONS, _NODE_MAX)
// and probe counts (BPFTRACE_MAX_PROBES, _MAX_BPF_PROGS).
func DefaultEnv(t messages.TraceType) EnvTable {
	if t != messages.BPF {
		return EnvTable{}
	}
	return EnvTable{
		"BPFTRACE_STRLEN":             {Kind: KindInt, Min: 1, Max: 200},
		"BPFTRACE_PERF_RB_PAGES":      {Kind: KindPow2, Min: 1, Max: 256},
		"BPFTRACE_MAP_KEYS_MAX":       {Kind: KindInt, Min: 1, Max: 16384},
		"BPFTRACE_NO_CPP_DEMANGLE":    {Kind: KindBool},
		"BPFTRACE_CACHE_USER_SYMBOLS": {Kind: KindBool},
		"BPFTRACE_NO_USER_SYMBOLS":    {Kind: KindBool},
	}
}

// DefaultRules returns the default rules: the DefaultEnv tables, unsafe
// options refused. Each call returns fresh maps.
func DefaultRules() Rules {
	return Rules{
		EnvAllow: map[messages.TraceType]EnvTable{
			messages.BPF:  DefaultEnv(messages.BPF),
			messages.STAP: DefaultEnv(messages.STAP),
		},
	}
}

// RulesFrom returns the default rules with the configuration entries of
// bpf and stap applied to the tables (see EnvTable.Add) and unsafe options
// as given. Its errors name the tracer and the entry and do not match
// ErrInvalid.
func RulesFrom(bpf, stap []string, allowUnsafeOptions bool) (Rules, error) {
	r := DefaultRules()
	r.AllowUnsafeOptions = allowUnsafeOptions
	if err := r.EnvAllow[messages.BPF].Add(bpf); err != nil {
		return Rules{}, fmt.Errorf("reading BPF environment allow-list: %w", err)
	}
	if err := r.EnvAllow[messages.STAP].Add(stap); err != nil {
		return Rules{}, fmt.Errorf("reading STAP environment allow-list: %w", err)
	}
	return r, nil
}

// Validate checks the rules themselves, for a configuration loader: every
// EnvAllow key is BPF or STAP, every table key a variable name or a
// well-formed path.Match pattern, every kind one this package knows with
// sane bounds. Its errors do not match ErrInvalid.
func (r Rules) Validate() error {
	for t, table := range r.EnvAllow {
		if t != messages.BPF && t != messages.STAP {
			return fmt.Errorf("checking environment allow-list: unknown tracer type %q", t)
		}
		for _, key := range table.keys() {
			if _, err := path.Match(key, ""); err != nil || key == "" {
				return fmt.Errorf("checking environment allow-list for %s: bad name or pattern %q", t, key)
			}
			k := table[key]
			if _, err := ParseEnvKind(k.String()); err != nil {
				return fmt.Errorf("checking environment allow-list for %s: %s: %w", t, key, err)
			}
		}
	}
	return nil
}
