package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

// Load reads the TOML file at path over Default, applies the environment
// overrides found with getenv (os.LookupEnv in production; nil means none),
// resolves auth.max-concurrent = 0 to auth.DefaultConcurrent() and validates the
// result. An empty path skips the file: defaults and environment only.
//
// The file is decoded strictly: unknown keys and values of the wrong type
// are errors naming the key. A file that itself holds a non-empty secret or
// root-password and whose mode grants any group/other permission is refused
// with a *PermissionError; secrets that come only from the environment are
// not checked.
//
// Errors start with "config <path>: ". Every bad-configuration error wraps
// ErrInvalid; failing to open or stat the file wraps the *fs.PathError
// instead (errors.Is(err, fs.ErrNotExist) works).
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	where := "config"
	if path != "" {
		where = "config " + path
	}
	cfg := Default()
	if path != "" {
		if err := decodeFile(path, &cfg); err != nil {
			var perm *PermissionError
			if errors.As(err, &perm) {
				return nil, err // already names the file
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	if getenv != nil {
		if err := applyEnv(&cfg, getenv); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	if cfg.Auth.MaxConcurrent == 0 {
		cfg.Auth.MaxConcurrent = auth.DefaultConcurrent()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &cfg, nil
}

// decodeFile decodes the file at path into cfg, refusing unknown keys and a
// file that holds secrets but is open to group/others.
func decodeFile(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return err // *fs.PathError: "open <path>: <reason>"
	}
	defer f.Close()
	// Stat the opened file, not the path, so the mode checked is the mode
	// of the bytes read.
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inspecting: %w", err)
	}
	md, err := toml.NewDecoder(f).Decode(cfg)
	if err != nil {
		return &decodeError{err: err}
	}
	if (cfg.Lambda.Secret != "" || cfg.Lambda.RootPassword != "") && info.Mode().Perm()&0o077 != 0 {
		return &PermissionError{Path: path, Mode: info.Mode().Perm()}
	}
	if err := unknownKeys(md.Undecoded()); err != nil {
		return err
	}
	return nil
}

// unknownKeyError lists the keys of a file that no Config field takes.
type unknownKeyError struct {
	keys  []string
	hints []string // hints[i] is a known key close to keys[i], or ""
}

func (e *unknownKeyError) Error() string {
	var b strings.Builder
	if len(e.keys) == 1 {
		b.WriteString("unknown key ")
	} else {
		b.WriteString("unknown keys ")
	}
	for i, k := range e.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", k)
		if e.hints[i] != "" {
			fmt.Fprintf(&b, " (did you mean %q?)", e.hints[i])
		}
	}
	return b.String()
}

func (e *unknownKeyError) Is(target error) bool { return target == ErrInvalid }

// unknownKeys reports the undecoded keys, leaving out the keys inside an
// unknown table (naming the table is enough).
func unknownKeys(undecoded []toml.Key) error {
	if len(undecoded) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(undecoded))
	for _, k := range undecoded {
		seen[k.String()] = true
	}
	known := knownKeys()
	e := &unknownKeyError{}
	for _, k := range undecoded {
		if len(k) > 1 && seen[k[:len(k)-1].String()] {
			continue
		}
		e.keys = append(e.keys, k.String())
		e.hints = append(e.hints, closestKey(k.String(), known))
	}
	return e
}

// closestKey returns the known key within edit distance 2 of key, or "".
func closestKey(key string, known []string) string {
	if len(key) > 64 {
		return "" // no key is that long; spare the quadratic distance
	}
	best, bestDist := "", 3
	for _, k := range known {
		if d := EditDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes: how
// the "did you mean" hints (config keys, environment variables, the CLI's
// flags and commands) find the name meant.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
