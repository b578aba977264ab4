package platform

import (
	"slices"

	"github.com/segmentio/asm/base64"
)

// appendBase64 appends the standard, padded base64 encoding of src to dst:
// the bytes of encoding/base64's StdEncoding. A chunk is encoded into every
// request body, and encoding was the largest single cost of moving tracer
// output in the endpoint's own code, so it uses segmentio/asm's encoder
// (AVX2 on amd64, NEON on arm64, encoding/base64 elsewhere), several times
// faster than encoding/base64's 6 bits per step.
func appendBase64(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	base64.StdEncoding.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}
