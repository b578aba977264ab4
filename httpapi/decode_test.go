package httpapi

import (
	"errors"
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
		{name: "both spellings equal", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"funtions":["xmalloc","xfree"],"traceType":"BPF"}`, want: seed},
		{name: "type as one-element array, lower case", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"traceType":["bpf"]}`, want: seed},
		{name: "stap mixed case", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"traceType":"sTaP"}`,
			want: messages.TemplateInfo{Process: "/bin/bash", Functions: []string{"xmalloc", "xfree"}, Environment: []string{}, Value: []string{}, Options: []string{}, TraceType: messages.STAP}},
		{name: "omitted lists are empty", body: `{"process":"/bin/bash","functions":["xmalloc","xfree"],"environment":null,"traceType":"BPF"}`, want: seed},
		{name: "both spellings differ", body: `{"process":"/bin/bash","functions":["a"],"funtions":["b"],"traceType":"BPF"}`, wantErr: "differ"},
		{name: "missing process", body: `{"functions":["a"],"traceType":"BPF"}`, wantErr: "process: missing"},
		{name: "missing functions", body: `{"process":"/bin/bash","traceType":"BPF"}`, wantErr: "functions: missing"},
		{name: "null functions", body: `{"process":"/bin/bash","functions":null,"traceType":"BPF"}`, wantErr: "functions: missing"},
		{name: "missing type", body: `{"process":"/bin/bash","functions":["a"]}`, wantErr: "traceType: missing"},
		{name: "empty type array (seed placeholder)", body: `{"process":"/bin/bash","functions":["a"],"traceType":[]}`, wantErr: "traceType"},
		{name: "two-element type array", body: `{"process":"/bin/bash","functions":["a"],"traceType":["BPF","STAP"]}`, wantErr: "traceType"},
		{name: "unknown type", body: `{"process":"/bin/bash","functions":["a"],"traceType":"DTRACE"}`, wantErr: "traceType"},
		{name: "wrong type of process", body: `{"process":7,"functions":["a"],"traceType":"BPF"}`, wantErr: "malformed JSON"},
		{name: "functions as string", body: `{"process":"/bin/bash","functions":"xmalloc","traceType":"BPF"}`, wantErr: "malformed JSON"},
		{name: "unknown field", body: `{"process":"/bin/bash","functions":["a"],"traceType":"BPF","shell":"id"}`, wantErr: "unknown field"},
		{name: "trailing data", body: `{"process":"/bin/bash","functions":["a"],"traceType":"BPF"} {}`, wantErr: "malformed JSON"},
		{name: "not an object", body: `[1,2]`, wantErr: "malformed JSON"},
		{name: "empty body", body: ``, wantErr: "malformed JSON"},
		{name: "truncated", body: `{"process":"/bin/bash",`, wantErr: "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeTemplate([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errBadRequest) {
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
		wantErr bool
		typ     messages.TraceType
	}{
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600}`, typ: messages.BPF},
		{body: `{"traceT":"stap","traceId":5,"lasting":1,"mode":"events"}`, typ: messages.STAP},
		{body: `{"traceT":"BPF","traceId":"1","lasting":3600}`, wantErr: true},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3.5}`, wantErr: true},
		{body: `{"traceT":"BPF","traceId":1,"lasting":3600,"extra":1}`, wantErr: true},
		{body: `{"traceT":"XDP","traceId":1,"lasting":3600}`, wantErr: true},
	}
	for _, tt := range tests {
		var req startRequest
		err := decodeStrict([]byte(tt.body), &req)
		var typ messages.TraceType
		if err == nil {
			typ, err = req.TraceT.parse("traceT")
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("decoding %s: error = %v, want error %v", tt.body, err, tt.wantErr)
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
	} {
		f.Add([]byte(s))
	}
	rules := validate.DefaultRules()
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := decodeTemplate(body)
		if err != nil {
			return
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
