package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

func TestDecodeTemplate(t *testing.T) {
	seed := messages.TemplateInfo{
		Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"},
		Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.BPF,
	}
	tests := []struct {
		name    string
		body    string
		want    messages.TemplateInfo
		wantErr string // substring; "" = success
	}{
		{name: "seed spelling funtions", body: `{"process":"/bin/bash","funtions":["xmalloc","xfree"],"environment":[],"value":[],"options":[],"traceType":"BPF"}`, want: seed},
		{name: "functions", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"environment":[],"value":[],"options":[],"traceType":"BPF"}`, want: seed},
		{name: "both spellings equal (ambiguous)", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"funtions":["xmalloc","xfree"],"traceType":"BPF"}`, wantErr: "functions: give functions or the seed's spelling funtions, not both"},
		{name: "type as one-element array, lower case", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"traceType":["bpf"]}`, want: seed},
		{name: "stap mixed case", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"traceType":"sTaP"}`,
			want: messages.TemplateInfo{Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"}, Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.STAP}},
		{name: "omitted lists are empty", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"environment":null,"traceType":"BPF"}`, want: seed},
		{name: "both spellings differ", body: `{"process":"/bin/bash","functions":["a"],"funtions":["b"],"traceType":"BPF"}`, wantErr: "not both"},
		{name: "case-variant key", body: `{"process":"/bin/bash","PROCESS":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`, wantErr: `"PROCESS": unknown key (keys are case-sensitive: did you mean "process"?)`},
		{name: "case-variant key alone", body: `{"Process":"/bin/bash","functions":["a"],"traceType":"BPF"}`, wantErr: `"Process": unknown key`},
		{name: "duplicate key", body: `{"process":"/bin/bash","process":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`, wantErr: `"process": key given twice`},
		{name: "duplicate key in a nested object", body: `{"process":"/bin/bash","functions":["a"],"traceType":{"a":1,"a":2}}`, wantErr: `"a": key given twice`},
		{name: "escaped duplicate key", body: `{"process":"/bin/bash","pro\u0063ess":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`, wantErr: `"process": key given twice`},
		{name: "case-variant traceType key", body: `{"process":"/bin/bash","functions":["a"],"tracetype":"BPF"}`, wantErr: `did you mean "traceType"`},
		{name: "missing process", body: `{"functions":["a"],"traceType":"BPF"}`, wantErr: "process: missing"},
		{name: "missing functions", body: `{"process":"/bin/bash","traceType":"BPF"}`, wantErr: "functions: missing"},
		{name: "null functions", body: `{"process":"/bin/bash","functions":null,"traceType":"BPF"}`, wantErr: "functions: missing"},
		{name: "missing type", body: `{"process":"/bin/bash","functions":["a"]}`, wantErr: "traceType: missing"},
		{name: "empty type array (seed placeholder)", body: `{"process":"/bin/bash","functions":["a"],"traceType":[]}`, wantErr: "traceType"},
		{name: "two-element type array", body: `{"process":"/bin/bash","functions":["a"],"traceType":["BPF","STAP"]}`, wantErr: "traceType"},
		{name: "unknown type", body: `{"process":"/bin/bash","functions":["a"],"traceType":"DTRACE"}`, wantErr: "traceType"},
		{name: "wrong type of process", body: `{"process":7,"functions":["a"],"traceType":"BPF"}`, wantErr: "process: must be a string, got a number"},
		{name: "functions as string", body: `{"process":"/bin/bash","functions":"xmalloc","traceType":"BPF"}`, wantErr: "functions: must be an array of strings, got a string"},
		{name: "functions holding a number", body: `{"process":"/bin/bash","functions":[1],"traceType":"BPF"}`, wantErr: "functions: must be an array of strings, got an array holding a number"},
		{name: "unknown field", body: `{"process":"/bin/bash","functions":["a"],"traceType":"BPF","shell":"id"}`, wantErr: `"shell": unknown key`},
		{name: "trailing data", body: `{"process":"/bin/bash","functions":["a"],"traceType":"BPF"} {}`, wantErr: "malformed JSON"},
		{name: "not an object", body: `[1,2]`, wantErr: "malformed JSON"},
		{name: "empty body", body: ``, wantErr: "malformed JSON"},
		{name: "truncated", body: `{"process":"/bin/bash",`, wantErr: "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeTemplate([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || statusOf(err) != http.StatusBadRequest {
					t.Fatalf("decodeTemplate() error = %v, want a bad request containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeTemplate() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decodeTemplate() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeStartRequest(t *testing.T) {
	tests := []struct {
		body    string
		wantErr string // the whole message; "" = success
		typ     messages.TraceType
	}{
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600}`, typ: messages.BPF},
		{body: `{"traceT":"stap","traceId":5,"lasting":1,"mode":"events"}`, typ: messages.STAP},
		{body: `{"traceT":"BPF","traceId":"1","lasting":3600}`, wantErr: "traceId: must be an integer template id, got a string"},
		{body: `{"traceT":"BPF","traceId":1,"lasting":"3600"}`, wantErr: "lasting: must be an integer number of seconds, got a string"},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3.5}`, wantErr: "lasting: must be an integer number of seconds, got 3.5"},
		{body: `{"traceT":"BPF","traceId":1,"lasting":1e99}`, wantErr: "lasting: must be an integer number of seconds, got 1e99"},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600,"extra":1}`, wantErr: `"extra": unknown key`},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600,"LASTING":1}`, wantErr: `"LASTING": unknown key (keys are case-sensitive: did you mean "lasting"?)`},
		{body: `{"traceT":"BPF","traceId":1,"traceId":2,"lasting":3600}`, wantErr: `"traceId": key given twice`},
		{body: `{"traceT":"XDP","traceId":1,"lasting":3600}`, wantErr: `traceT: "XDP" is not "BPF" or "STAP"`},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600}x`, wantErr: "malformed JSON: data after the object"},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600}{}`, wantErr: "malformed JSON: data after the object"},
		{body: `{"traceT":"BPF",`, wantErr: "malformed JSON: the body ends inside a value"},
		{body: `[]`, wantErr: "malformed JSON: the body must be a JSON object"},
		{body: `"x"`, wantErr: "malformed JSON: the body must be a JSON object"},
		{body: ``, wantErr: "malformed JSON: the body is empty"},
		{body: `{"traceT":"BPF" "traceId":1}`, wantErr: `malformed JSON at byte 16: invalid character '"' after object key:value pair`},
	}
	for _, tt := range tests {
		var req startRequest
		err := decodeStrict([]byte(tt.body), &req)
		var typ messages.TraceType
		if err == nil {
			typ, err = req.TraceT.parse("traceT")
		}
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || statusOf(err) != http.StatusBadRequest {
				t.Errorf("decoding %s: error = %v, want 400 %q", tt.body, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("decoding %s: %v", tt.body, err)
			continue
		}
		if err == nil && typ != tt.typ {
			t.Errorf("decoding %s: type = %q, want %q", tt.body, typ, tt.typ)
		}
	}
}

// FuzzDecodeTemplate runs request bodies through the same decoding and
// validation as PUT /trace and checks that whatever is accepted is within
// the allow-lists, re-checked here independently of the validate package.
func FuzzDecodeTemplate(f *testing.F) {
	for _, s := range []string{
		`{"process":"/bin/bash","funtions":["xmalloc","xfree"],"environment":[],"value":[],"options":[],"traceType":"BPF"}`,
		`{"process":"/usr/lib/x86_64-linux-gnu/libc.so.6","functions":["mall*","fre?"],"environment":["BPFTRACE_STRLEN"],"value":["200"],"options":["-B","line","-p","42"],"traceType":["BPF"]}`,
		`{"process":"/bin/bash","functions":["a"],"options":["-x","1","-s","8"],"environment":["SYSTEMTAP_X"],"value":["v"],"traceType":"STAP"}`,
		`{"process":"/bin/ba sh","functions":["x} interval:s:1 { system(\"id\")"],"traceType":"BPF"}`,
		`{"process":"../etc/passwd","functions":["a"],"options":["-c","id"],"traceType":"bpf"}`,
		`{"process":"/bin/bash","PROCESS":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`,
		`{"process":"/bin/bash","process":"/usr/bin/true","functions":["a"],"traceType":"BPF"}`,
		`{"process":"/bin/bash","functions":["a"],"funtions":["a"],"traceType":"BPF"}`,
		`{"process":"/bin/bash","functions":["a"],"traceType":"BPF","environment":{"a":1,"a":2}}`,
	} {
		f.Add([]byte(s))
	}
	rules := validate.DefaultRules()
	known := map[string]bool{"process": true, "functions": true, "funtions": true, "environment": true, "value": true, "options": true, "traceType": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := decodeTemplate(body)
		if err != nil {
			if statusOf(err) != http.StatusBadRequest {
				t.Fatalf("refusal %v has status %d, want 400", err, statusOf(err))
			}
			return
		}
		// Accepted: one object whose keys are spelled exactly, one of
		// functions/funtions, and the process it means is the one decoded.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		for k := range raw {
			if !known[k] {
				t.Fatalf("accepted key %q", k)
			}
		}
		if raw["functions"] != nil && raw["funtions"] != nil {
			t.Fatal("accepted both functions and funtions")
		}
		var process string
		if json.Unmarshal(raw["process"], &process) != nil || process != info.Process {
			t.Fatalf("process %q decoded as %q", raw["process"], info.Process)
		}
		if validate.Template(info, rules) != nil {
			return
		}
		if !strings.HasPrefix(info.Process, "/") || !allIn(info.Process, "/._-+@,~=") {
			t.Fatalf("accepted process %q", info.Process)
		}
		if len(info.Functions) == 0 {
			t.Fatal("accepted an empty functions list")
		}
		for _, fn := range info.Functions {
			if fn == "" || !allIn(fn, "_.$@*?") {
				t.Fatalf("accepted function %q", fn)
			}
		}
		if len(info.Environment) != len(info.Value) {
			t.Fatalf("accepted %d names for %d values", len(info.Environment), len(info.Value))
		}
		prefix := "BPFTRACE_"
		if info.TraceType == messages.STAP {
			prefix = "SYSTEMTAP_"
		}
		for i, name := range info.Environment {
			if !strings.HasPrefix(name, prefix) || !allIn(name, "_") {
				t.Fatalf("accepted environment name %q", name)
			}
			if strings.ContainsAny(info.Value[i], "\x00\n\r") {
				t.Fatalf("accepted environment value %q", info.Value[i])
			}
		}
		for _, o := range info.Options {
			switch o {
			case "-c", "--unsafe", "-o", "-e", "-I", "--include", "-g", "--guru", "-r", "-m":
				t.Fatalf("accepted unsafe option %q", o)
			}
			if strings.ContainsAny(o, "\x00\n\r") {
				t.Fatalf("accepted option %q", o)
			}
		}
	})
}

// allIn reports whether s is ASCII letters, digits and the extra bytes.
func allIn(s, extra string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 128 && strings.ContainsRune(extra, c):
		default:
			return false
		}
	}
	return true
}
