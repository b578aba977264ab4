package platformtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"trace":"/t","status":"start"}`, true},
		{" {\n\t\"trace\" : \"/t\" ,\r\n \"status\":\"start\" } \n", true},
		{`{"tr\u0061ce":"/t","status":"start"}`, true},
		{`{"trace":"/t\"q","no":0,"field":"YWJj"}`, true},
		{`{"trace":"/t","no":0,"field":"YW\/j"}`, true}, // an escaped "/" is still base64
		{`{"trace":"/t","no":1e2,"field":"YWJj"}`, false},
		{`{"trace":"/t","no":0,"field":"YWJj",}`, false},
		{`{"trace":"/t","no":0,"field":"YWJj"}x`, false},
		{`{"trace":"/t","no":0,"field":"YWJj"`, false},
		{`{"trace":"/t","trace":"/u","status":"start"}`, false},
		{`{"trace":"/t","status":"start","x":{}}`, false},
		{`{"trace":"/t","status":"start","x":[]}`, false},
		{`{"trace":"/t","status":"start","x":1}`, false},
		{`{"trace":"/t` + "\x01" + `","status":"start"}`, false},
		{`{"trace":"/t","no":0,"field":"YW` + "\x01" + `Jj"}`, false},
		{`{"trace":"/t","no":-0,"field":"YWJj"}`, true},
		{`{"trace":"/t","no":01,"field":"YWJj"}`, false},
		{`{"trace":"/t","status":null}`, false},
		{`{"trace":"/t","stderr":"","code":-9,"status":"finished","reason":"killed","chunks":0,"bytes":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}`, true},
		{`{"trace":"/t","stderr":"","code":true,"status":"finished"}`, false},
		{`[]`, false},
		{``, false},
		{`{}`, false},
	}
	for _, tt := range tests {
		m, err := parseMessage([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("parseMessage(%q) = %+v, %v; want ok %v", tt.body, m, err, tt.ok)
		}
	}
}

// FuzzParseMessage checks that whatever the receiver accepts is valid JSON
// and means what encoding/json says it means.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"trace":"/t","status":"start"}`,
		`{"trace":"/t\"q\u00e9","no":3,"field":"YWJj"}`,
		`{"trace":"/t","no":0,"field":"YW\u004aj"}`,
		`{"trace":"/t","stderr":"a\nb","code":137,"status":"finished","reason":"killed","chunks":2,"bytes":6}`,
		`{"trace":"/t","no":0,"field":"YWJj","x":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var ref struct {
			Trace  string `json:"trace"`
			No     int64  `json:"no"`
			Field  string `json:"field"`
			Stderr string `json:"stderr"`
			Code   int    `json:"code"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q that encoding/json refuses: %v", body, err)
		}
		if ref.Trace != m.trace || ref.No != m.no || ref.Stderr != m.fin.Stderr || ref.Code != m.fin.Code {
			t.Fatalf("%q parsed to %+v, encoding/json says %+v", body, m, ref)
		}
		if m.kind == kindChunk {
			want, err := base64.StdEncoding.DecodeString(ref.Field)
			if err != nil || !bytes.Equal(want, m.data) {
				t.Fatalf("%q: field decoded to %q, want %q (%v)", body, m.data, want, err)
			}
		}
	})
}
