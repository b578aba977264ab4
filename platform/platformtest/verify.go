package platformtest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrUnauthorized is wrapped by every error Verify returns.
var ErrUnauthorized = errors.New("authorization refused")

// Bounds on the cost parameters Verify accepts, so a test cannot hang on an
// absurd header.
const (
	maxMemoryKiB   = 256 * 1024
	maxIterations  = 32
	maxParallelism = 16
	maxHashLen     = 1024
)

var b64 = base64.RawStdEncoding.Strict()

// Verify checks an Authorization header value the way API.md specifies: it
// is split at the first "$argon2"; the prefix must equal uuid and the rest
// must be a PHC string "$argon2i$v=19$m=M,t=T,p=P$<salt>$<hash>" (argon2i
// or argon2id, version 19, unpadded standard base64) whose hash is the
// argon2 hash of secret with that salt and those parameters. Errors wrap
// ErrUnauthorized.
func Verify(header, uuid, secret string) error {
	i := strings.Index(header, "$argon2")
	if i < 0 {
		return fmt.Errorf("finding $argon2 in header: %w", ErrUnauthorized)
	}
	if subtle.ConstantTimeCompare([]byte(header[:i]), []byte(uuid)) != 1 {
		return fmt.Errorf("comparing endpoint uuid: mismatch: %w", ErrUnauthorized)
	}
	parts := strings.Split(header[i+1:], "$")
	if len(parts) != 5 {
		return fmt.Errorf("parsing PHC string: %d fields, want 5: %w", len(parts), ErrUnauthorized)
	}
	variant := parts[0]
	if variant != "argon2i" && variant != "argon2id" {
		return fmt.Errorf("parsing PHC string: variant %q: %w", variant, ErrUnauthorized)
	}
	if parts[1] != "v=19" {
		return fmt.Errorf("parsing PHC string: version %q, want v=19: %w", parts[1], ErrUnauthorized)
	}
	m, t, p, err := parseParams(parts[2])
	if err != nil {
		return fmt.Errorf("parsing PHC parameters %q: %w: %w", parts[2], err, ErrUnauthorized)
	}
	salt, err := b64.DecodeString(parts[3])
	if err != nil || len(salt) == 0 {
		return fmt.Errorf("decoding salt: %v: %w", err, ErrUnauthorized)
	}
	want, err := b64.DecodeString(parts[4])
	if err != nil || len(want) < 4 || len(want) > maxHashLen {
		return fmt.Errorf("decoding hash (%d bytes): %v: %w", len(want), err, ErrUnauthorized)
	}
	var got []byte
	if variant == "argon2i" {
		got = argon2.Key([]byte(secret), salt, t, m, p, uint32(len(want)))
	} else {
		got = argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("comparing hash: mismatch: %w", ErrUnauthorized)
	}
	return nil
}

// parseParams parses "m=M,t=T,p=P" in that order.
func parseParams(s string) (m, t uint32, p uint8, err error) {
	kv := strings.Split(s, ",")
	if len(kv) != 3 {
		return 0, 0, 0, fmt.Errorf("want m=,t=,p=")
	}
	var vals [3]uint64
	for i, key := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], key)
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return 0, 0, 0, fmt.Errorf("field %d: want %sN", i, key)
		}
		vals[i], err = strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("field %s: %w", key, err)
		}
	}
	switch {
	case vals[2] < 1 || vals[2] > maxParallelism:
		return 0, 0, 0, fmt.Errorf("parallelism %d out of [1,%d]", vals[2], maxParallelism)
	case vals[1] < 1 || vals[1] > maxIterations:
		return 0, 0, 0, fmt.Errorf("iterations %d out of [1,%d]", vals[1], maxIterations)
	case vals[0] < 8*vals[2] || vals[0] > maxMemoryKiB:
		return 0, 0, 0, fmt.Errorf("memory %d KiB out of [8p,%d]", vals[0], maxMemoryKiB)
	}
	return uint32(vals[0]), uint32(vals[1]), uint8(vals[2]), nil
}

// Header returns a fresh outgoing Authorization value for uuid and secret,
// as API.md prescribes: uuid + "$argon2i$v=19$m=4096,t=3,p=1$<16-byte random
// salt>$<32-byte hash>". It lets tests talk to an endpoint, or feed a
// client, without the project's auth package.
func Header(uuid, secret string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails
	return HeaderWithSalt(uuid, secret, salt, false)
}

// HeaderWithSalt is Header with a given salt; id selects argon2id instead of
// argon2i. Deterministic, for golden tests.
func HeaderWithSalt(uuid, secret string, salt []byte, id bool) string {
	variant, key := "argon2i", argon2.Key([]byte(secret), salt, 3, 4096, 1, 32)
	if id {
		variant, key = "argon2id", argon2.IDKey([]byte(secret), salt, 3, 4096, 1, 32)
	}
	return uuid + "$" + variant + "$v=19$m=4096,t=3,p=1$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}
