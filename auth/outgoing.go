package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/argon2"
)

// outgoingParams returns the parameters of every header this endpoint sends.
func outgoingParams() Params {
	return Params{Variant: Argon2i, Memory: 4096, Iterations: 3, Parallelism: 1}
}

// Sizes of the salt and hash of outgoing headers.
const (
	outgoingSaltLen = 16
	outgoingHashLen = 32
)

// Header returns an Authorization header value for the endpoint: the UUID
// followed by "$argon2i$v=19$m=4096,t=3,p=1$<salt>$<hash>", a fresh 16-byte
// random salt and the 32-byte argon2i hash of secret, base64 without padding.
// It costs one argon2 computation (about 10 ms): compute it once and reuse it
// (see NewOutgoing). It fails if the UUID is empty or contains "$argon2", or
// if no random salt can be read.
func Header(endpointUUID, secret string) (string, error) {
	if endpointUUID == "" {
		return "", errors.New("building authorization header: empty endpoint uuid")
	}
	if strings.Contains(endpointUUID, phcMarker) {
		return "", fmt.Errorf("building authorization header: endpoint uuid contains %q", phcMarker)
	}
	salt := make([]byte, outgoingSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("building authorization header: reading salt: %w", err)
	}
	p := outgoingParams()
	hash := argon2.Key([]byte(secret), salt, p.Iterations, p.Memory, uint8(p.Parallelism), outgoingHashLen)
	return endpointUUID + p.Encode(salt, hash), nil
}

// Outgoing is an Authorization header value computed once and sent with
// every request. It is a bearer credential: String and LogValue redact it,
// only Value reveals it. The zero Outgoing has an empty Value.
type Outgoing struct {
	value string
}

// NewOutgoing computes the header value for the endpoint once (see Header).
func NewOutgoing(endpointUUID, secret string) (Outgoing, error) {
	h, err := Header(endpointUUID, secret)
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{value: h}, nil
}

// Value returns the header value to send as Authorization.
func (o Outgoing) Value() string { return o.value }

// String returns a redacted placeholder so the credential is not printed.
func (o Outgoing) String() string { return "[redacted authorization]" }

// GoString returns a redacted placeholder so %#v does not print the credential.
func (o Outgoing) GoString() string { return "auth.Outgoing{[redacted]}" }

// LogValue returns a redacted placeholder so slog does not log the credential.
func (o Outgoing) LogValue() slog.Value { return slog.StringValue("[redacted authorization]") }
