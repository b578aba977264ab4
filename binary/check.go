package binary

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// DefaultMaxProbes is the most functions a template may probe, wildcards
// expanded, when lambda.max-probes is not set.
const DefaultMaxProbes = 40

// MaxProbesLimit is the largest lambda.max-probes a configuration may set.
const MaxProbesLimit = 4096

// Checker is the preflight of templates against their binaries. Its zero
// value is not usable; make one with NewChecker. It is safe for concurrent
// use.
type Checker struct {
	maxProbes int
	cache     *Cache
	// reads bounds the binaries read at once (MaxReads): reading a large
	// one takes seconds of a core and memory in proportion, and PUT and
	// every start share this checker.
	reads chan struct{}
}

// MaxReads is how many binaries a Checker reads at once (those not in its
// cache); more wait for a turn.
const MaxReads = 2

// NewChecker returns a Checker that allows at most maxProbes probed
// functions per template (DefaultMaxProbes when maxProbes <= 0) and
// remembers what it read in cache (a new DefaultCacheBytes cache when nil).
func NewChecker(maxProbes int, cache *Cache) *Checker {
	if maxProbes <= 0 {
		maxProbes = DefaultMaxProbes
	}
	if cache == nil {
		cache = NewCache(0)
	}
	return &Checker{maxProbes: maxProbes, cache: cache, reads: make(chan struct{}, MaxReads)}
}

// MaxProbes is the checker's bound on probed functions.
func (c *Checker) MaxProbes() int { return c.maxProbes }

// Result is what a successful Check learnt about a template's binary.
type Result struct {
	// Identity is the binary's identity when it was checked.
	Identity Identity
	// Go reports a Go binary: no return probe may go into it.
	Go bool
	// GoVersion is the Go toolchain's version when Go and it can be read
	// (see Symbols.GoVersion).
	GoVersion string
	// Probes is the number of functions the template probes, wildcards
	// expanded (a function named twice, e.g. by "x*" and "xmalloc", counts
	// twice: it gets two probes).
	Probes int
}

// Symbols returns the symbols of the binary at path and its identity, from
// the cache when the file (by device, inode, size and mtime) was read
// before.
func (c *Checker) Symbols(path string) (*Symbols, Identity, error) {
	f, err := Open(path)
	if err != nil {
		return nil, Identity{}, err
	}
	defer f.Close()
	s, err := c.SymbolsOf(f)
	if err != nil {
		return nil, Identity{}, err
	}
	return s, f.Identity(), nil
}

// SymbolsOf returns the symbols of the opened file f, from the cache when
// the file (by its identity) was read before.
func (c *Checker) SymbolsOf(f *File) (*Symbols, error) {
	if s, ok := c.cache.get(f.key); ok {
		return s, nil
	}
	c.reads <- struct{}{}
	defer func() { <-c.reads }()
	s, err := ReadFile(f)
	if err != nil {
		return nil, err
	}
	c.cache.put(f.key, s)
	return s, nil
}

// CheckFile is Check against the opened file f of info.Process (see Open):
// what it checks is what f holds, whatever the path names by then. It also
// returns the symbols it checked against.
func (c *Checker) CheckFile(info messages.TemplateInfo, f *File) (Result, *Symbols, error) {
	s, err := c.SymbolsOf(f)
	if err != nil {
		return Result{}, nil, processError(info.Process, err)
	}
	res, err := c.check(info, s, f.Identity())
	if err != nil {
		return Result{}, nil, err
	}
	return res, s, nil
}

// Check runs the preflight of info against the binary info.Process names
// now: a readable ELF executable or shared library for this host's
// architecture; every function name or wildcard matches at least one
// function symbol; at most MaxProbes functions probed in all. info must
// have passed validate.Template. Every refusal is a *validate.FieldError
// (or an errors.Join of them, one per unmatched function) for "process",
// "functions" or "functions[i]", matching validate.ErrInvalid.
func (c *Checker) Check(info messages.TemplateInfo) (Result, error) {
	s, id, err := c.Symbols(info.Process)
	if err != nil {
		return Result{}, processError(info.Process, err)
	}
	return c.check(info, s, id)
}

// check is Check against the symbols s of the binary with identity id.
func (c *Checker) check(info messages.TemplateInfo, s *Symbols, id Identity) (Result, error) {
	res := Result{Identity: id, Go: s.Go, GoVersion: s.GoVersion}
	var unmatched []error
	seen := make(map[string]bool, len(info.Functions))
	var steps int64
	for i, f := range info.Functions {
		if seen[f] { // the script probes a repeated name once
			continue
		}
		seen[f] = true
		n := matches(info.TraceType, pattern(info.TraceType, f), s.Functions, &steps)
		if steps > maxMatchSteps {
			return Result{}, &validate.FieldError{Field: "functions", Reason: fmt.Sprintf(
				"the wildcards are too costly to expand against the %d functions of %s; use fewer or simpler wildcards",
				len(s.Functions), info.Process)}
		}
		if n == 0 {
			unmatched = append(unmatched, &validate.FieldError{Field: "functions[" + strconv.Itoa(i) + "]",
				Reason: unmatchedReason(info, f, s)})
			continue
		}
		res.Probes += n
	}
	if len(unmatched) == 1 {
		return Result{}, unmatched[0]
	}
	if len(unmatched) > 1 {
		return Result{}, errors.Join(unmatched...)
	}
	if res.Probes > c.maxProbes {
		return Result{}, &validate.FieldError{Field: "functions", Reason: fmt.Sprintf(
			"expand to %d functions to probe (counting the matches of every name and wildcard), more than the limit of %d (lambda.max-probes); name fewer functions or narrower wildcards",
			res.Probes, c.maxProbes)}
	}
	return res, nil
}

// unmatchedReason says why f matches nothing in s.
func unmatchedReason(info messages.TemplateInfo, f string, s *Symbols) string {
	what := "function"
	if hasWildcard(info.TraceType, pattern(info.TraceType, f)) {
		what = "wildcard"
	}
	reason := fmt.Sprintf("%s %s matches no function symbol of %s (.symtab and .dynsym, %d functions)",
		what, strconv.QuoteToASCII(f), info.Process, len(s.Functions))
	if len(s.Functions) == 0 {
		return reason + ": the binary is stripped of its symbols"
	}
	return reason + ": it may be misspelt, inlined by the compiler, or static and stripped; a function of a shared library is traced with that library as process"
}

// processError turns a failure to read the binary at p into a refusal of
// the field process.
func processError(p string, err error) error {
	var reason string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason = "does not exist"
	case errors.Is(err, fs.ErrPermission):
		reason = "cannot be read (permission denied)"
	case errors.Is(err, ErrNotRegular):
		reason = "is not a regular file"
	case errors.Is(err, ErrChanged):
		reason = "changed while it was opened"
	case errors.Is(err, ErrWrongArch), errors.Is(err, ErrNotELF):
		reason = "is " + err.Error()
	default:
		reason = "cannot be read: " + strings.TrimPrefix(err.Error(), "open "+p+": ")
	}
	return &validate.FieldError{Field: "process", Reason: strconv.QuoteToASCII(p) + " " + reason}
}

// Mode checks that mode can trace the binary res describes without harming
// it with bpftrace or SystemTap: on a Go binary only mode events (entry
// probes only) is allowed. The native engine (messages.EngineNative) never
// puts a return probe into a Go binary (it probes each RET instruction), so
// this check is not for it. A refusal is a *validate.FieldError for "mode".
func Mode(res Result, mode messages.Mode) error {
	if !res.Go || mode == "" || mode == messages.ModeEvents {
		return nil
	}
	return &validate.FieldError{Field: "mode", Reason: strconv.QuoteToASCII(string(mode)) +
		" needs return probes, and this is a Go binary: a return probe (uretprobe, also behind SystemTap's .return) corrupts the goroutine stack and crashes the program; use mode events, which traces Go functions at entry only, or engine native, which measures Go returns safely"}
}
