package native

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"
)

// TestAppendRecord formats a run of records whose ids, CPU and comm change
// from one to the next (and come back), so the formatter's caches of the
// last ids and comm must be refreshed and reused correctly, and compares
// each line with the line built field by field.
func TestAppendRecord(t *testing.T) {
	type rec struct {
		kind          uint16
		fn            uint16
		uid, pid, tid uint32
		cpu           uint32
		time, dur     uint64
		ret           int64
		comm          string
	}
	f := newFormatter("/bin/t", []string{"f", "g"})
	var b []byte
	var want string
	for _, r := range []rec{
		{kindEntry, 0, 0, 10, 10, 0, 100, 0, 0, "t"},
		{kindReturn, 0, 0, 10, 10, 0, 200, 0, -1, "t"},
		{kindEntry, 1, 0, 10, 11, 0, 300, 0, 0, "t"},   // another thread
		{kindReturn, 1, 0, 10, 11, 1, 400, 0, 7, "t"},  // another CPU
		{kindCall, 0, 1000, 10, 10, 1, 500, 9, 3, "t"}, // another uid
		{kindCall, 1, 1000, 10, 10, 1, 600, 9, 3, `a"b`},
		{kindCall, 1, 1000, 10, 10, 1, 700, 9, 3, "t"}, // the first comm again
		{kindEntry, 0, 0, 10, 10, 0, 800, 0, 0, "t"},   // the first ids again
	} {
		raw := make([]byte, recordSize)
		le := binary.LittleEndian
		le.PutUint64(raw[offTime:], r.time)
		le.PutUint64(raw[offPidTgid:], uint64(r.pid)<<32|uint64(r.tid))
		le.PutUint64(raw[offUidGid:], 77<<32|uint64(r.uid))
		le.PutUint64(raw[offRetval:], uint64(r.ret))
		le.PutUint64(raw[offDuration:], r.dur)
		le.PutUint32(raw[offCPU:], r.cpu)
		le.PutUint16(raw[offFunction:], r.fn)
		le.PutUint16(raw[offKind:], r.kind)
		copy(raw[offComm:], r.comm)
		var ok bool
		if b, ok = f.appendRecord(b, raw); !ok {
			t.Fatalf("record %+v skipped", r)
		}
		name := []string{"f", "g"}[r.fn]
		ids := fmt.Sprintf(`"uid":%d,"pid":%d,"tid":%d,"cpu":%d,"time":%d,"process":%s`, r.uid, r.pid, r.tid, r.cpu, r.time, strconv.Quote(r.comm))
		switch r.kind {
		case kindEntry:
			want += fmt.Sprintf(`{"probe":"uprobe:/bin/t:%s",%s}`+"\n", name, ids)
		case kindReturn:
			want += fmt.Sprintf(`{"return":"uretprobe:/bin/t:%s",%s,"retval":%d}`+"\n", name, ids, r.ret)
		case kindCall:
			want += fmt.Sprintf(`{"function":"uprobe:/bin/t:%s",%s,"duration":%d,"retval":%d}`+"\n", name, ids, r.dur, r.ret)
		}
	}
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}
