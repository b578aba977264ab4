package platform

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
)

// The standard base64 alphabet, two characters per 12 bits: enc12[v] is
// the encoding of the 12-bit value v, first character in the low byte.
var enc12 = func() (t [1 << 12]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v := range t {
		t[v] = uint16(alphabet[v>>6]) | uint16(alphabet[v&63])<<8
	}
	return t
}()

// appendBase64 appends the standard, padded base64 encoding of src to dst:
// the bytes of base64.StdEncoding.AppendEncode, about twice as fast. A
// chunk is encoded into every request body, and encoding was the largest
// single cost of moving tracer output (encoding/base64 looks up 6 bits at
// a time; this loop takes 6 input bytes per step, 12 bits per lookup).
func appendBase64(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	out := dst[len(dst) : len(dst)+n]
	i, o := 0, 0
	for ; len(src)-i >= 8 && len(out)-o >= 8; i, o = i+6, o+8 {
		v := binary.BigEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(out[o:], uint64(enc12[v>>52])|
			uint64(enc12[v>>40&0xfff])<<16|
			uint64(enc12[v>>28&0xfff])<<32|
			uint64(enc12[v>>16&0xfff])<<48)
	}
	base64.StdEncoding.Encode(out[o:], src[i:])
	return dst[:len(dst)+n]
}
