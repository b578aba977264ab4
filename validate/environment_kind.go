package validate

import (
	"errors"
	"fmt"
	"math/bits"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Kinds of environment values (EnvKind.Kind).
const (
	// KindInt is a decimal integer from Min to Max: digits only, no sign,
	// spaces, leading zeros or hex.
	KindInt = "int"
	// KindPow2 is a KindInt that is also a power of two.
	KindPow2 = "pow2"
	// KindBool is "0" or "1", the only values bpftrace 0.17 accepts.
	KindBool = "bool"
	// KindEnum is one of Words, matched exactly (case-sensitive).
	KindEnum = "enum"
	// KindAny is any value without NUL, newline or carriage return, at most
	// 4096 bytes. It is never a default: a path or an unbounded size lets a
	// template run code as root or exhaust the host.
	KindAny = "any"
	// kindDeny, in a configuration entry only, removes a built-in variable.
	kindDeny = "deny"
)

// maxIntDigits bounds the digits of a KindInt value (int64 has 19).
const maxIntDigits = 18

// EnvKind is what values an allowed environment variable may take.
type EnvKind struct {
	Kind     string   // KindInt, KindPow2, KindBool, KindEnum or KindAny
	Min, Max int64    // bounds of KindInt and KindPow2, inclusive
	Words    []string // values of KindEnum
}

// String spells the kind as a configuration entry does: "int:1..200",
// "pow2:1..256", "bool", "enum:a|b", "any".
func (k EnvKind) String() string {
	switch k.Kind {
	case KindInt, KindPow2:
		return k.Kind + ":" + strconv.FormatInt(k.Min, 10) + ".." + strconv.FormatInt(k.Max, 10)
	case KindEnum:
		return KindEnum + ":" + strings.Join(k.Words, "|")
	}
	return k.Kind
}

// check returns why v is not of kind k, or "".
func (k EnvKind) check(v string) string {
	switch k.Kind {
	case KindAny:
		return ""
	case KindBool:
		if v == "0" || v == "1" {
			return ""
		}
		return "want 0 or 1"
	case KindEnum:
		if slices.Contains(k.Words, v) {
			return ""
		}
		return "want one of " + strings.Join(k.Words, ", ")
	case KindInt, KindPow2:
		want := "want a decimal integer from " + strconv.FormatInt(k.Min, 10) + " to " + strconv.FormatInt(k.Max, 10)
		if k.Kind == KindPow2 {
			want = "want a power of two from " + strconv.FormatInt(k.Min, 10) + " to " + strconv.FormatInt(k.Max, 10)
		}
		n, ok := parseDecimal(v)
		if !ok || n < k.Min || n > k.Max || k.Kind == KindPow2 && bits.OnesCount64(uint64(n)) != 1 {
			return want
		}
		return ""
	}
	return "the variable has no valid values"
}

// parseDecimal parses v as "0" or a non-zero digit followed by digits, at
// most maxIntDigits of them.
func parseDecimal(v string) (int64, bool) {
	if v == "" || len(v) > maxIntDigits || v[0] == '0' && len(v) > 1 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// ParseEnvKind parses the kind part of a configuration entry: "int:LO..HI",
// "pow2:LO..HI", "bool", "enum:A|B|C" or "any".
func ParseEnvKind(s string) (EnvKind, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	switch name {
	case KindBool, KindAny:
		if hasArg {
			return EnvKind{}, fmt.Errorf("kind %q takes no argument", name)
		}
		return EnvKind{Kind: name}, nil
	case KindEnum:
		words := strings.Split(arg, "|")
		if !hasArg || slices.Contains(words, "") {
			return EnvKind{}, errors.New(`an enum needs words, such as "enum:a|b|c"`)
		}
		for _, w := range words {
			if reason := checkEnvValue(w); reason != "" || strings.ContainsAny(w, ", ") {
				return EnvKind{}, fmt.Errorf("enum word %q may not hold a comma, space, NUL or newline", w)
			}
		}
		return EnvKind{Kind: KindEnum, Words: words}, nil
	case KindInt, KindPow2:
		lo, hi, ok := strings.Cut(arg, "..")
		min, okLo := parseDecimal(lo)
		max, okHi := parseDecimal(hi)
		if !hasArg || !ok || !okLo || !okHi {
			return EnvKind{}, fmt.Errorf(`%s needs decimal bounds, such as "%s:1..200"`, name, name)
		}
		if min > max {
			return EnvKind{}, fmt.Errorf("%s bounds %d..%d: the lower bound is above the upper", name, min, max)
		}
		k := EnvKind{Kind: name, Min: min, Max: max}
		if name == KindPow2 && (max == 0 || min > 1<<(bits.Len64(uint64(max))-1)) {
			return EnvKind{}, fmt.Errorf("pow2 bounds %d..%d hold no power of two", min, max)
		}
		return k, nil
	case "":
		return EnvKind{}, errors.New("missing kind (int:LO..HI, pow2:LO..HI, bool, enum:A|B or any)")
	}
	return EnvKind{}, fmt.Errorf("unknown kind %q (want int:LO..HI, pow2:LO..HI, bool, enum:A|B, any or deny)", name)
}

// EnvTable maps an environment variable name, or a path.Match pattern such
// as "BPFTRACE_*", to the kind of its values.
type EnvTable map[string]EnvKind

// isPattern reports whether a table key is a pattern.
func isPattern(key string) bool { return strings.ContainsAny(key, "*?[") }

// Lookup returns the kind of name: its exact entry, else the entry of the
// first pattern (in byte order) that matches it.
func (t EnvTable) Lookup(name string) (EnvKind, bool) {
	if k, ok := t[name]; ok && !isPattern(name) {
		return k, true
	}
	for _, key := range t.keys() {
		if isPattern(key) {
			if ok, err := path.Match(key, name); ok && err == nil {
				return t[key], true
			}
		}
	}
	return EnvKind{}, false
}

// keys returns the table's keys in byte order.
func (t EnvTable) keys() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// String lists the entries as "NAME (kind), ..." in name order.
func (t EnvTable) String() string {
	var b strings.Builder
	for i, key := range t.keys() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(key + " (" + t[key].String() + ")")
	}
	return b.String()
}

// Clone returns a copy of t that shares nothing with it.
func (t EnvTable) Clone() EnvTable {
	c := make(EnvTable, len(t))
	for key, k := range t {
		k.Words = slices.Clone(k.Words)
		c[key] = k
	}
	return c
}

// Add applies configuration entries to t, in order: "NAME=KIND" adds or
// replaces NAME (KIND as ParseEnvKind reads it), "NAME=deny" removes it.
// NAME is a variable name or, with KIND "any" or another, a path.Match
// pattern of letters, digits, '_', '*' and '?'. An error names the entry.
func (t EnvTable) Add(entries []string) error {
	for _, e := range entries {
		name, kind, err := ParseEnvEntry(e)
		if err != nil {
			return err
		}
		if kind.Kind == kindDeny {
			delete(t, name)
			continue
		}
		t[name] = kind
	}
	return nil
}

// ParseEnvEntry parses one configuration entry "NAME=KIND" (see Add); a
// removal has Kind "deny". An error quotes the entry.
func ParseEnvEntry(e string) (string, EnvKind, error) {
	name, spec, ok := strings.Cut(e, "=")
	if !ok {
		return "", EnvKind{}, fmt.Errorf(`entry %q: want NAME=KIND, such as "BPFTRACE_STRLEN=int:1..200"`, e)
	}
	if name == "" || len(name) > maxEnvNameLen || !isIdentifier(strings.NewReplacer("*", "_", "?", "_").Replace(name)) {
		return "", EnvKind{}, fmt.Errorf("entry %q: the name may hold only letters, digits, '_' and the wildcards '*' '?'", e)
	}
	if spec == kindDeny {
		return name, EnvKind{Kind: kindDeny}, nil
	}
	kind, err := ParseEnvKind(spec)
	if err != nil {
		return "", EnvKind{}, fmt.Errorf("entry %q: %w", e, err)
	}
	return name, kind, nil
}
