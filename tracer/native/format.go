package native

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// The record the BPF programs write into the ring buffer, one per event,
// recordSize bytes, native (little-endian) byte order:
//
//	off  size  field
//	0    8     time: bpf_ktime_get_ns() (entry time for a call)
//	8    8     bpf_get_current_pid_tgid(): tgid << 32 | tid
//	16   8     bpf_get_current_uid_gid(): gid << 32 | uid
//	24   8     retval: the return register (RAX), returns and calls
//	32   8     duration in nanoseconds, calls
//	40   4     cpu: bpf_get_smp_processor_id()
//	44   2     function index
//	46   2     kind: kindEntry, kindReturn, kindCall
//	48   16    comm: bpf_get_current_comm(), NUL-padded
const (
	recordSize = 64

	offTime     = 0
	offPidTgid  = 8
	offUidGid   = 16
	offRetval   = 24
	offDuration = 32
	offCPU      = 40
	offFunction = 44
	offKind     = 46
	offComm     = 48
	commSize    = 16
)

// Record kinds.
const (
	kindEntry  = 0
	kindReturn = 1
	kindCall   = 2
)

// Histogram buckets per function: bucket b counts durations of b
// significant bits, 0..64.
const histBuckets = 65

// formatter turns records into the JSON lines of the bpftrace scripts
// (see tracer.Script): the probe names are escaped once, up front.
type formatter struct {
	entry, ret, call [][]byte // per function: `{"probe":"uprobe:...","uid":` and so on

	// The last comm seen and its escaped form, `,"process":"..."`: a
	// trace mostly sees one process, so most records reuse it.
	comm     [commSize]byte
	commJSON []byte

	// The last ids seen (uid, pid_tgid, cpu) and their formatted form,
	// `U,"pid":P,"tid":T,"cpu":C,"time":`: a thread's records mostly come
	// in runs from one CPU, so most records reuse it.
	ids     [3]uint64
	idsJSON []byte
}

// newFormatter returns the formatter of the functions of process.
func newFormatter(process string, functions []string) *formatter {
	f := &formatter{}
	for _, fn := range functions {
		up := appendJSONString(nil, "uprobe:"+process+":"+fn)
		uret := appendJSONString(nil, "uretprobe:"+process+":"+fn)
		f.entry = append(f.entry, append(append([]byte(`{"probe":`), up...), `,"uid":`...))
		f.ret = append(f.ret, append(append([]byte(`{"return":`), uret...), `,"uid":`...))
		f.call = append(f.call, append(append([]byte(`{"function":`), up...), `,"uid":`...))
	}
	return f
}

// appendRecord appends the line of the record r (recordSize bytes) to b;
// a record of an unknown kind or function is skipped and ok is false.
func (f *formatter) appendRecord(b, r []byte) (_ []byte, ok bool) {
	if len(r) < recordSize {
		return b, false
	}
	le := binary.LittleEndian
	fn := int(le.Uint16(r[offFunction:]))
	if fn >= len(f.entry) {
		return b, false
	}
	kind := le.Uint16(r[offKind:])
	switch kind {
	case kindEntry:
		b = append(b, f.entry[fn]...)
	case kindReturn:
		b = append(b, f.ret[fn]...)
	case kindCall:
		b = append(b, f.call[fn]...)
	default:
		return b, false
	}
	ids := [3]uint64{le.Uint64(r[offUidGid:]) & 0xffffffff, le.Uint64(r[offPidTgid:]), uint64(le.Uint32(r[offCPU:]))}
	if f.idsJSON == nil || ids != f.ids {
		f.ids = ids
		j := strconv.AppendUint(f.idsJSON[:0], ids[0], 10)
		j = append(j, `,"pid":`...)
		j = strconv.AppendUint(j, ids[1]>>32, 10)
		j = append(j, `,"tid":`...)
		j = strconv.AppendUint(j, ids[1]&0xffffffff, 10)
		j = append(j, `,"cpu":`...)
		j = strconv.AppendUint(j, ids[2], 10)
		f.idsJSON = append(j, `,"time":`...)
	}
	b = append(b, f.idsJSON...)
	b = strconv.AppendUint(b, le.Uint64(r[offTime:]), 10)
	comm := r[offComm : offComm+commSize]
	if f.commJSON == nil || string(comm) != string(f.comm[:]) {
		copy(f.comm[:], comm)
		n := 0
		for n < len(comm) && comm[n] != 0 {
			n++
		}
		f.commJSON = appendJSONBytes(append(f.commJSON[:0], `,"process":`...), comm[:n])
	}
	b = append(b, f.commJSON...)
	switch kind {
	case kindReturn:
		b = append(b, `,"retval":`...)
		b = strconv.AppendInt(b, int64(le.Uint64(r[offRetval:])), 10)
	case kindCall:
		b = append(b, `,"duration":`...)
		b = strconv.AppendUint(b, le.Uint64(r[offDuration:]), 10)
		b = append(b, `,"retval":`...)
		b = strconv.AppendInt(b, int64(le.Uint64(r[offRetval:])), 10)
	}
	return append(b, "}\n"...), true
}

// appendSummary appends the summary line of one function (see
// tracer.Script, mode summary) with the bucket counts hist to b; nothing
// when no call completed.
func appendSummary(b []byte, process, function string, hist []uint64) []byte {
	var calls uint64
	for _, n := range hist {
		calls += n
	}
	if calls == 0 {
		return b
	}
	b = append(b, `{"function":`...)
	b = appendJSONString(b, "uprobe:"+process+":"+function)
	b = append(b, `,"hist":[`...)
	first := true
	for bucket, n := range hist {
		if n == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"le_ns":`...)
		le := ^uint64(0)
		if bucket < 64 {
			le = 1<<uint(bucket) - 1
		}
		b = strconv.AppendUint(b, le, 10)
		b = append(b, `,"count":`...)
		b = strconv.AppendUint(b, n, 10)
		b = append(b, '}')
	}
	b = append(b, `],"calls":`...)
	b = strconv.AppendUint(b, calls, 10)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, quoted.
func appendJSONString(b []byte, s string) []byte { return appendJSONBytes(b, []byte(s)) }

const hexDigits = "0123456789abcdef"

// appendJSONBytes appends s as a JSON string, quoted: quotes, backslashes
// and control characters escaped, bytes that are not UTF-8 replaced by
// U+FFFD, so the line is valid JSON whatever a process calls itself.
func appendJSONBytes(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\t':
					b = append(b, '\\', 't')
				case '\r':
					b = append(b, '\\', 'r')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
