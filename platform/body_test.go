package platform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

const weirdPath = "/tmp/we\"ird\\päth\u2028\x01\xff\t☃.trace"

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestBodiesGolden(t *testing.T) {
	fin := Finish{Stderr: "Attaching 2 probes...\nERROR: \"x\"\t<&>\n", Code: 137, Reason: "killed", LostEvents: 7,
		Chunks: 3, Bytes: 100, SHA256: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"}
	tests := []struct {
		name string
		body []byte
	}{
		{"start", AppendStartBody(nil, "/tmp/4633d686-f75d-4d1f-8415-02ce37d9e5f8.trace")},
		{"start_weird_path", AppendStartBody(nil, weirdPath)},
		{"chunk", AppendChunkBody(nil, "/tmp/a.trace", 0, []byte("{\"probe\":\"xmalloc\"}\n{\"probe\":\"xfree\"}\n"))},
		{"chunk_binary_weird_path", AppendChunkBody(nil, weirdPath, 12345678901, allBytes())},
		{"chunk_empty", AppendChunkBody(nil, "/tmp/a.trace", 7, nil)},
		{"finished", AppendFinishedBody(nil, "/tmp/a.trace", fin)},
		{"finished_zero", AppendFinishedBody(nil, weirdPath, Finish{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid(tt.body) {
				t.Fatalf("invalid JSON: %s", tt.body)
			}
			golden := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(bytes.Clone(tt.body), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create): %v", err)
			}
			if got := string(tt.body) + "\n"; got != string(want) {
				t.Errorf("body differs from %s\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

func TestBodiesDecode(t *testing.T) {
	fin := Finish{Stderr: "a\x00b\xfe", Code: -1, Reason: "failed-to-start", Chunks: 1, Bytes: 2, SHA256: "ab"}
	var start struct {
		Trace  string `json:"trace"`
		Status string `json:"status"`
	}
	mustDecode(t, AppendStartBody(nil, weirdPath), &start)
	wantPath := strings.ToValidUTF8(weirdPath, "\uFFFD")
	if start.Trace != wantPath || start.Status != "start" {
		t.Errorf("start decoded to %+v", start)
	}
	var fm map[string]any
	mustDecode(t, AppendFinishedBody(nil, weirdPath, fin), &fm)
	want := map[string]any{"trace": wantPath, "stderr": "a\x00b\uFFFD", "code": -1.0, "status": "finished",
		"reason": "failed-to-start", "chunks": 1.0, "bytes": 2.0, "sha256": "ab", "lostEvents": 0.0}
	if len(fm) != len(want) {
		t.Errorf("finished has fields %v, want %v", fm, want)
	}
	for k, v := range want {
		if fm[k] != v {
			t.Errorf("finished %s = %#v, want %#v", k, fm[k], v)
		}
	}
	checkChunk(t, weirdPath, -5, allBytes())
	checkChunk(t, "/tmp/a.trace", 1<<62, bytes.Repeat([]byte("x\n"), 25600))
}

func mustDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

// checkChunk encodes a chunk body and checks it decodes back.
func checkChunk(t testing.TB, trace string, no int64, data []byte) {
	t.Helper()
	body := AppendChunkBody([]byte("prefix"), trace, no, data)
	if !bytes.HasPrefix(body, []byte("prefix")) {
		t.Fatal("AppendChunkBody lost dst's content")
	}
	body = body[len("prefix"):]
	if len(body) > ChunkBodyLen(trace, len(data)) {
		t.Fatalf("body of %d bytes exceeds ChunkBodyLen %d", len(body), ChunkBodyLen(trace, len(data)))
	}
	var m struct {
		Trace *string `json:"trace"`
		No    *int64  `json:"no"`
		Field *string `json:"field"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	if m.Trace == nil || m.No == nil || m.Field == nil {
		t.Fatalf("missing field in %q", body)
	}
	// The path must decode to what encoding/json's own round trip gives.
	ref, _ := json.Marshal(trace)
	var wantTrace string
	_ = json.Unmarshal(ref, &wantTrace)
	if *m.Trace != wantTrace {
		t.Errorf("trace decoded to %q, want %q", *m.Trace, wantTrace)
	}
	if utf8.ValidString(trace) && *m.Trace != trace {
		t.Errorf("valid UTF-8 trace %q decoded to %q", trace, *m.Trace)
	}
	if *m.No != no {
		t.Errorf("no decoded to %d, want %d", *m.No, no)
	}
	got, err := base64.StdEncoding.Strict().DecodeString(*m.Field)
	if err != nil {
		t.Fatalf("decoding field: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("field decoded to %q, want %q", got, data)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", weirdPath, "<&>", "\u2029\u2028", "\x7f\x00\x1f", "\xed\xa0\x80", "a\xc3", "日本語"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzChunkBody(f *testing.F) {
	f.Add("/tmp/a.trace", int64(0), []byte("hello\n"))
	f.Add(weirdPath, int64(-1), allBytes())
	f.Add("", int64(1<<62), []byte{})
	f.Add("\u2028\"\\", int64(42), []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, trace string, no int64, data []byte) {
		checkChunk(t, trace, no, data)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(trace)
		if got, want := string(appendJSONString(nil, trace)), strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("appendJSONString(%q) = %s, encoding/json gives %s", trace, got, want)
		}
	})
}
