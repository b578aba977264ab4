package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Variant is an argon2 variant as spelled in a PHC string.
type Variant string

// The variants Parse accepts. argon2d is refused: it is not meant for
// password hashing.
const (
	Argon2i  Variant = "argon2i"
	Argon2id Variant = "argon2id"
)

// Version is the only argon2 version accepted and written (0x13).
const Version = 19

// Bounds on the decoded salt and hash that Parse accepts.
const (
	MinSaltLen = 8
	MaxSaltLen = 64
	MinHashLen = 16
	MaxHashLen = 64
)

// maxLanes is argon2's upper bound on parallelism (2^24 - 1).
const maxLanes = 1<<24 - 1

// Params are the argon2 parameters of a PHC string.
type Params struct {
	Variant     Variant
	Memory      uint32 // m, KiB
	Iterations  uint32 // t
	Parallelism uint32 // p (argon2 itself allows up to 2^24-1)
}

// Encode returns the PHC string for p with the given salt and hash:
// "$argon2i$v=19$m=4096,t=3,p=1$<salt>$<hash>", base64 without padding.
func (p Params) Encode(salt, hash []byte) string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		p.Variant, Version, p.Memory, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(hash))
}

// Parse decodes a PHC-encoded argon2 hash,
// "$argon2i$v=19$m=4096,t=3,p=1$<salt>$<hash>". It accepts the argon2i and
// argon2id variants and version 19 only; the parameters m, t and p, in that
// order, as decimal numbers without sign or leading zeros, each at least 1
// and m at least 8·p; salt and hash in standard base64 with or without
// padding, the salt MinSaltLen..MaxSaltLen and the hash MinHashLen..MaxHashLen
// bytes long. It does not compare costs with any Limits. The error describes
// the first problem found and never repeats the input beyond a short prefix
// of the variant.
func Parse(encoded string) (p Params, salt, hash []byte, err error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return Params{}, nil, nil, errors.New("malformed hash: want $variant$v=19$m=..,t=..,p=..$salt$hash")
	}
	switch v := Variant(fields[1]); v {
	case Argon2i, Argon2id:
		p.Variant = v
	default:
		return Params{}, nil, nil, fmt.Errorf("unsupported variant %.16q", fields[1])
	}
	version, ok := strings.CutPrefix(fields[2], "v=")
	if !ok {
		return Params{}, nil, nil, errors.New("malformed hash: missing version")
	}
	if version != strconv.Itoa(Version) {
		return Params{}, nil, nil, fmt.Errorf("unsupported version %.8q", version)
	}
	if p.Memory, p.Iterations, p.Parallelism, err = parseCosts(fields[3]); err != nil {
		return Params{}, nil, nil, err
	}
	if salt, err = decodeBase64("salt", fields[4], MinSaltLen, MaxSaltLen); err != nil {
		return Params{}, nil, nil, err
	}
	if hash, err = decodeBase64("hash", fields[5], MinHashLen, MaxHashLen); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, hash, nil
}

// parseCosts parses "m=<n>,t=<n>,p=<n>".
func parseCosts(s string) (m, t, p uint32, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return 0, 0, 0, errors.New("malformed hash: want parameters m=..,t=..,p=..")
	}
	values := [3]uint32{}
	for i, name := range [3]string{"m", "t", "p"} {
		digits, ok := strings.CutPrefix(parts[i], name+"=")
		if !ok {
			return 0, 0, 0, fmt.Errorf("malformed hash: parameter %d must be %s", i+1, name)
		}
		if values[i], err = parseDecimal(digits); err != nil {
			return 0, 0, 0, fmt.Errorf("malformed hash: parameter %s: %w", name, err)
		}
		if values[i] == 0 {
			return 0, 0, 0, fmt.Errorf("malformed hash: parameter %s must be at least 1", name)
		}
	}
	m, t, p = values[0], values[1], values[2]
	if p > maxLanes {
		return 0, 0, 0, fmt.Errorf("malformed hash: p=%d above argon2's %d", p, maxLanes)
	}
	if uint64(m) < 8*uint64(p) {
		return 0, 0, 0, fmt.Errorf("malformed hash: m=%d below 8·p=%d", m, 8*uint64(p))
	}
	return m, t, p, nil
}

// parseDecimal parses an unsigned 32-bit decimal number without sign or
// leading zeros.
func parseDecimal(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("number out of range")
	}
	return uint32(n), nil
}

// decodeBase64 decodes standard base64 with or without padding, refusing
// anything outside the alphabet (line breaks included) and non-canonical
// trailing bits, and checks the decoded length.
func decodeBase64(what, s string, minLen, maxLen int) ([]byte, error) {
	// Bound the work before decoding: maxLen bytes need at most this many
	// characters with padding.
	if len(s) > (maxLen+2)/3*4 {
		return nil, fmt.Errorf("malformed hash: %s longer than %d bytes", what, maxLen)
	}
	unpadded := strings.TrimRight(s, "=")
	for i := 0; i < len(unpadded); i++ {
		if !isBase64(unpadded[i]) {
			return nil, fmt.Errorf("malformed hash: %s is not base64", what)
		}
	}
	enc := base64.RawStdEncoding.Strict()
	if len(unpadded) != len(s) {
		enc = base64.StdEncoding.Strict()
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("malformed hash: %s is not base64", what)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("malformed hash: %s is %d bytes, want %d to %d", what, len(b), minLen, maxLen)
	}
	return b, nil
}

func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
