package tracer

import (
	"bytes"
	"testing"
)

func filterAll(in []byte, splits ...int) ([]byte, NoticeFilter) {
	var f NoticeFilter
	var out []byte
	prev := 0
	for _, s := range splits {
		out = f.Write(out, in[prev:s])
		prev = s
	}
	out = f.Write(out, in[prev:])
	out = f.Flush(out)
	return out, f
}

func TestNoticeFilter(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	for _, tc := range []struct {
		name, in, out string
		lost          int64
	}{
		{"empty", "", "", 0},
		{"bpftrace events", "Attaching 2 probes...\n{\"probe\":\"a\"}\n{\"return\":\"a\"}\n\n\n", "{\"probe\":\"a\"}\n{\"return\":\"a\"}\n", 0},
		{"one probe", "Attaching 1 probe...\n{\"a\":1}\n", "{\"a\":1}\n", 0},
		{"lost", "{\"a\":1}\nLost 402 events\n{\"a\":2}\nLost 1924 events\n", "{\"a\":1}\n{\"a\":2}\n", 2326},
		{"lost json", "{\"type\": \"lost_events\", \"data\": {\"events\": 12}}\n{\"a\":1}\n", "{\"a\":1}\n", 12},
		{"attached json", "{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}\n{\"a\":1}\n", "{\"a\":1}\n", 0},
		{"other json type kept", "{\"type\": \"printf\", \"data\": \"hi\"}\n", "{\"type\": \"printf\", \"data\": \"hi\"}\n", 0},
		{"other text kept", "WARNING: something\nLost many events\nLost -3 events\nLost +3 events\n", "WARNING: something\nLost many events\nLost -3 events\nLost +3 events\n", 0},
		{"no final newline", "{\"a\":1}\n{\"a\":2}", "{\"a\":1}\n{\"a\":2}", 0},
		{"final notice without newline", "{\"a\":1}\nLost 5 events", "{\"a\":1}\n", 5},
		{"crlf blank", "\r\n{\"a\":1}\n", "{\"a\":1}\n", 0},
		{"long text line", string(long) + "\n", string(long) + "\n", 0},
		{"long text no newline", string(long), string(long), 0},
		{"summary", "Attaching 3 probes...\n\n\n{\"function\":\"f\",\"hist\":[],\"calls\":0}\n\n", "{\"function\":\"f\",\"hist\":[],\"calls\":0}\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			// Every way of cutting the input in two and in three gives the same result.
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j += max(1, len(in)/7) {
					out, f := filterAll(in, i, j)
					if string(out) != tc.out || f.Lost != tc.lost {
						t.Fatalf("split at %d,%d: got %q lost %d, want %q lost %d", i, j, out, f.Lost, tc.out, tc.lost)
					}
					if f.Removed != int64(len(in)-len(out)) {
						t.Fatalf("split at %d,%d: Removed %d, want %d", i, j, f.Removed, len(in)-len(out))
					}
				}
			}
		})
	}
}

func FuzzNoticeFilter(f *testing.F) {
	f.Add([]byte("Attaching 2 probes...\n{\"probe\":\"a\"}\nLost 3 events\n\n"), 5)
	f.Add([]byte("{\"type\": \"lost_events\", \"data\": {\"events\": 12}}\n"), 3)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		whole, fw := filterAll(in)
		split, fs := filterAll(in, cut)
		if !bytes.Equal(whole, split) || fw.Lost != fs.Lost || fw.Removed != fs.Removed {
			t.Fatalf("split at %d changes the result: %q/%d vs %q/%d", cut, whole, fw.Lost, split, fs.Lost)
		}
		if fw.Removed != int64(len(in)-len(whole)) || fw.Lost < 0 {
			t.Fatalf("Removed %d for %d in, %d out; lost %d", fw.Removed, len(in), len(whole), fw.Lost)
		}
		// Output is a subsequence of whole lines of the input: every JSON
		// line of the input that is no notice survives.
		for _, line := range bytes.SplitAfter(in, []byte("\n")) {
			if len(line) > 0 && line[0] == '{' && !bytes.HasPrefix(line, []byte(`{"type":`)) && !bytes.Contains(whole, line) {
				t.Fatalf("JSON line %q lost", line)
			}
		}
	})
}

func BenchmarkNoticeFilter(b *testing.B) {
	line := []byte(`{"probe":"uprobe:/bin/bash:xmalloc","uid":0,"pid":7,"tid":7,"cpu":1,"time":5066831520,"process":"bash"}` + "\n")
	buf := bytes.Repeat(line, 64*1024/len(line))
	out := make([]byte, 0, len(buf))
	b.SetBytes(int64(len(buf)))
	var f NoticeFilter
	for b.Loop() {
		out = f.Write(out[:0], buf)
	}
}

func TestNoticeFilterInPlace(t *testing.T) {
	in := []byte("Attaching 2 probes...\n{\"probe\":\"a\"}\nLost 3 events\n" + string(bytes.Repeat([]byte("W"), 120)) + "\n\n{\"return\":\"a\"}\nLo")
	want, _ := filterAll(in)
	for step := 1; step <= len(in); step++ {
		var f NoticeFilter
		var out []byte
		for off := 0; off < len(in); off += step {
			chunk := in[off:min(off+step, len(in))]
			buf := make([]byte, NoticeSlack+len(chunk))
			copy(buf[NoticeSlack:], chunk)
			k := f.FilterInPlace(buf, len(chunk))
			out = append(out, buf[:k]...)
		}
		out = f.Flush(out)
		if !bytes.Equal(out, want) || f.Lost != 3 {
			t.Fatalf("step %d: got %q lost %d, want %q", step, out, f.Lost, want)
		}
	}
}
