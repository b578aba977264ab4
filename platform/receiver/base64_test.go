package receiver

import (
	"bytes"
	stdbase64 "encoding/base64"
	"testing"
)

// FuzzBase64SameAsStdlib checks that the receiver's decoder (segmentio/asm,
// strict) accepts exactly what encoding/base64's strict StdEncoding accepts,
// and decodes it to the same bytes: the SIMD decoder must not widen what a
// chunk's "field" may hold.
func FuzzBase64SameAsStdlib(f *testing.F) {
	for _, s := range []string{
		"", "YQ==", "YWI=", "YWJj", "YWJ=", "YQ", "Y===", "YW\nJj", "YWJj\r\n",
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==",
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\nMjM0NTY3ODkrLw==",
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLx==",
		"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkr-_==",
	} {
		f.Add(s)
	}
	std := stdbase64.StdEncoding.Strict()
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := std.DecodeString(s)
		got, gerr := b64.DecodeString(s)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/base64 says %v, the receiver's decoder %v", s, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q: decoded to %x, want %x", s, got, want)
		}
	})
}
