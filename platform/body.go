package platform

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// AppendStartBody appends the JSON body of a trace's start message,
// {"trace":P,"status":"start"}, to dst and returns the extended slice.
func AppendStartBody(dst []byte, trace string) []byte {
	dst = append(dst, `{"trace":`...)
	dst = appendJSONString(dst, trace)
	return append(dst, `,"status":"start"}`...)
}

// AppendChunkBody appends the JSON body of chunk number no of a trace,
// {"trace":P,"no":N,"field":"<standard base64 of data, padded>"}, to dst and
// returns the extended slice. The base64 is encoded directly into dst.
func AppendChunkBody(dst []byte, trace string, no int64, data []byte) []byte {
	dst = append(dst, `{"trace":`...)
	dst = appendJSONString(dst, trace)
	dst = append(dst, `,"no":`...)
	dst = strconv.AppendInt(dst, no, 10)
	dst = append(dst, `,"field":"`...)
	dst = appendBase64(dst, data)
	return append(dst, '"', '}')
}

// ChunkBodyLen returns an upper bound of the length of AppendChunkBody's
// output for a trace path of len(trace) bytes and n raw bytes, for sizing
// buffers.
func ChunkBodyLen(trace string, n int) int {
	// Every byte of the path escapes to at most 6 bytes (\u00XX or \ufffd
	// for one invalid byte), 20 digits hold any int64 with its sign.
	return len(`{"trace":"","no":,"field":""}`) + 6*len(trace) + 20 + base64.StdEncoding.EncodedLen(n)
}

// AppendFinishedBody appends the JSON body of a trace's finished message,
// {"trace":P,"stderr":S,"code":C,"status":"finished","reason":R,"chunks":N,
// "bytes":B,"sha256":H,"lostEvents":L}, to dst and returns the extended
// slice. trace, stderr, code, status, chunks, bytes and lostEvents are
// always written (API.md: also when nothing was delivered); reason and
// sha256 are left out when empty.
func AppendFinishedBody(dst []byte, trace string, f Finish) []byte {
	dst = append(dst, `{"trace":`...)
	dst = appendJSONString(dst, trace)
	dst = append(dst, `,"stderr":`...)
	dst = appendJSONString(dst, f.Stderr)
	dst = append(dst, `,"code":`...)
	dst = strconv.AppendInt(dst, int64(f.Code), 10)
	dst = append(dst, `,"status":"finished"`...)
	if f.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, f.Reason)
	}
	dst = append(dst, `,"chunks":`...)
	dst = strconv.AppendInt(dst, f.Chunks, 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, f.Bytes, 10)
	if f.SHA256 != "" {
		dst = append(dst, `,"sha256":`...)
		dst = appendJSONString(dst, f.SHA256)
	}
	dst = append(dst, `,"lostEvents":`...)
	dst = strconv.AppendInt(dst, f.LostEvents, 10)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. It escapes like
// encoding/json without HTML escaping: '"', '\\' and control characters are
// escaped, each invalid UTF-8 byte becomes \ufffd, and U+2028/U+2029 are
// escaped so the output is also valid JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
