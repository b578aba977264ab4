package tracer

import (
	"bytes"
	"strconv"
)

// maxNoticeLen is the longest line NoticeFilter holds back to decide
// whether it is a notice; a longer line that does not start with '{' is
// passed on as output.
const maxNoticeLen = 128

// NoticeFilter removes bpftrace's own notices from a tracer's stdout so
// that every line the platform receives from a trace mode is one JSON
// object, and counts the events bpftrace reports it lost:
//
//	Attaching 4 probes...        (removed)
//	                             (blank lines: removed)
//	Lost 402 events              (removed, 402 added to Lost)
//
// and their JSON-format twins with -f json ({"type": "attached_probes", ...},
// {"type": "lost_events", "data": {"events": N}}). Every other line, JSON
// or not, is passed on unchanged, so nothing the script printed is lost.
//
// It is a streaming filter: lines may be split across Write calls. A line
// that starts with '{' is decided at its first byte and copied through
// without being buffered (the hot path: one IndexByte per line); other
// lines are held back (at most maxNoticeLen bytes) until their newline
// says what they are. The zero value is ready to use; it is not safe for
// concurrent use.
type NoticeFilter struct {
	// Lost is the sum of the events bpftrace reported lost so far.
	Lost int64
	// Removed is the number of notice bytes removed so far.
	Removed int64

	pending []byte // start of an undecided line
	inLine  bool   // inside a line already passed on (its head was kept)
}

// Write appends to dst the bytes of p that are trace output and returns
// the extended dst.
func (f *NoticeFilter) Write(dst, p []byte) []byte {
	for len(p) > 0 {
		if f.inLine {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return append(dst, p...)
			}
			dst = append(dst, p[:i+1]...)
			p = p[i+1:]
			f.inLine = false
			continue
		}
		if len(f.pending) == 0 && p[0] == '{' && !maybeJSONNotice(p) {
			f.inLine = true
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.pending = append(f.pending, p...)
			if len(f.pending) > maxNoticeLen {
				dst = append(dst, f.pending...)
				f.pending = f.pending[:0]
				f.inLine = true
			}
			return dst
		}
		line := p[:i+1]
		if len(f.pending) > 0 {
			f.pending = append(f.pending, line...)
			line = f.pending
		}
		if f.notice(line) {
			f.Removed += int64(len(line))
		} else {
			dst = append(dst, line...)
		}
		f.pending = f.pending[:0]
		p = p[i+1:]
	}
	return dst
}

// NoticeSlack is the room FilterInPlace needs in front of the bytes it
// filters: the most a filter holds back between calls.
const NoticeSlack = maxNoticeLen + 1

// FilterInPlace filters the n bytes at buf[NoticeSlack:NoticeSlack+n] (a
// read straight into that part of buf) and writes the output to the start
// of buf, returning its length: no buffer of its own and no copy beyond the
// compaction. It is safe because the output never overtakes the input:
// at every step the filter has written at most what it held back (fewer
// than NoticeSlack bytes) plus what it has consumed.
func (f *NoticeFilter) FilterInPlace(buf []byte, n int) int {
	return len(f.Write(buf[:0], buf[NoticeSlack:NoticeSlack+n]))
}

// Flush appends what is held back at the end of the output (a last line
// without a newline is output, unless it is a notice) and resets the line
// state.
func (f *NoticeFilter) Flush(dst []byte) []byte {
	if len(f.pending) > 0 {
		if f.notice(f.pending) {
			f.Removed += int64(len(f.pending))
		} else {
			dst = append(dst, f.pending...)
		}
		f.pending = f.pending[:0]
	}
	f.inLine = false
	return dst
}

// maybeJSONNotice reports whether p, a line that starts with '{', could be
// one of bpftrace's JSON notices: those start with {"type": and are short.
// Script output lines never start that way (their first key is probe,
// return or function).
func maybeJSONNotice(p []byte) bool {
	const head = `{"type":`
	n := min(len(p), len(head))
	return bytes.Equal(p[:n], []byte(head)[:n])
}

// notice reports whether line (with or without its newline) is a bpftrace
// notice, adding a lost-events count to f.Lost.
func (f *NoticeFilter) notice(line []byte) bool {
	if len(bytes.TrimSuffix(line, []byte("\n"))) > maxNoticeLen {
		return false // as Write decides when such a line arrives in pieces
	}
	s := bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(s)) == 0 {
		return true
	}
	if n, ok := wordsAround(s, "Attaching ", " probes..."); ok && n >= 0 {
		return true
	}
	if n, ok := wordsAround(s, "Attaching ", " probe..."); ok && n >= 0 {
		return true
	}
	if n, ok := wordsAround(s, "Lost ", " events"); ok && n >= 0 {
		f.Lost += n
		return true
	}
	compact := bytes.ReplaceAll(s, []byte(" "), nil)
	if n, ok := wordsAround(compact, `{"type":"lost_events","data":{"events":`, `}}`); ok && n >= 0 {
		f.Lost += n
		return true
	}
	if n, ok := wordsAround(compact, `{"type":"attached_probes","data":{"probes":`, `}}`); ok && n >= 0 {
		return true
	}
	return false
}

// wordsAround parses s as prefix, a decimal number, suffix.
func wordsAround(s []byte, prefix, suffix string) (int64, bool) {
	if len(s) < len(prefix)+len(suffix) || !bytes.HasPrefix(s, []byte(prefix)) || !bytes.HasSuffix(s, []byte(suffix)) {
		return 0, false
	}
	num := s[len(prefix) : len(s)-len(suffix)]
	if len(num) == 0 || len(num) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || num[0] == '+' || num[0] == '-' {
		return 0, false
	}
	return n, true
}
