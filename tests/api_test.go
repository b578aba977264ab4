package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const bashTemplate = `{"process":"/bin/bash","funtions":["xmalloc","xfree"],"environment":[],"value":[],"options":[],"traceType":"BPF"}`

type templateOut struct {
	TraceNo int64 `json:"traceNo"`
	Info    struct {
		Process     string   `json:"process"`
		Functions   []string `json:"functions"`
		Environment []string `json:"environment"`
		Value       []string `json:"value"`
		Options     []string `json:"options"`
		TraceType   string   `json:"traceType"`
	} `json:"info"`
}

// TestAPIContract drives every route of API.md, with its error cases, once
// against each store.
func TestAPIContract(t *testing.T) {
	for name, url := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEndpoint(t, endpointOptions{DatabaseURL: url})
			testAPIContract(t, e)
		})
	}
}

func testAPIContract(t *testing.T, e *endpoint) {
	t.Run("heartbeat", func(t *testing.T) {
		var hb struct{ Status, Time string }
		e.mustJSON("GET", "/heartbeat", "", http.StatusOK, &hb)
		if hb.Status != "alive" {
			t.Errorf("status = %q", hb.Status)
		}
		ts, err := time.Parse(time.RFC3339, hb.Time)
		if err != nil || !strings.HasSuffix(hb.Time, "Z") {
			t.Fatalf("time %q is not RFC 3339 UTC: %v", hb.Time, err)
		}
		if d := time.Since(ts); d < -time.Minute || d > time.Minute {
			t.Errorf("time %q is %s away from now", hb.Time, d)
		}
	})

	t.Run("authorization", func(t *testing.T) {
		other := strings.Replace(authHeader, testUUID, "00000000-0000-4000-8000-000000000000", 1)
		cases := map[string]string{
			"missing":        "",
			"garbage":        "hello",
			"other endpoint": other,
			"wrong secret":   testUUID + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"argon2d":        strings.Replace(authHeader, "$argon2i$", "$argon2d$", 1),
			"huge memory":    testUUID + "$argon2i$v=19$m=4194304,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM",
		}
		cases["bearer"] = "Bearer " + authHeader
		cases["under the cost floor"] = testUUID + "$argon2i$v=19$m=8,t=1,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"
		var first string
		for name, h := range cases {
			for _, route := range []string{"/heartbeat", "/traces", "/traces/running/all"} {
				st, body, ct := e.do("GET", route, "", map[string]string{"Authorization": h})
				if st != http.StatusUnauthorized || !strings.HasPrefix(ct, "application/json") || !json.Valid(body) {
					t.Errorf("%s on %s: %d %s %s, want 401 JSON", name, route, st, ct, body)
				}
				// One answer for every refusal: the caller cannot tell them apart.
				if first == "" {
					first = string(body)
				} else if string(body) != first {
					t.Errorf("%s on %s: body %s differs from %s", name, route, body, first)
				}
			}
		}
		if !strings.Contains(first, "<endpoint-uuid>$argon2id$v=19$") || strings.Contains(first, "unauthorized: unauthorized") {
			t.Errorf("401 body %s does not state the expected format once", first)
		}
		// The seed's example header is valid.
		seed := testUUID + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"
		if st, body, _ := e.do("GET", "/heartbeat", "", map[string]string{"Authorization": seed}); st != http.StatusOK {
			t.Errorf("seed example header: %d %s", st, body)
		}
		// Writes are refused without auth and store nothing.
		st, _, _ := e.do("PUT", "/trace", bashTemplate, map[string]string{"Authorization": ""})
		if st != http.StatusUnauthorized {
			t.Errorf("unauthenticated PUT: %d", st)
		}
	})

	var list []templateOut
	e.mustJSON("GET", "/traces", "", http.StatusOK, &list)
	if len(list) != 0 {
		t.Fatalf("fresh store lists %d templates", len(list))
	}

	t.Run("templates", func(t *testing.T) {
		var a, b templateOut
		e.mustJSON("PUT", "/trace", bashTemplate, http.StatusCreated, &a)
		e.mustJSON("PUT", "/trace", `{"process":"/bin/bash","functions":["readline"],"environment":["SYSTEMTAP_DEBUG"],"value":["1"],"options":["-v"],"traceType":["stap"]}`, http.StatusCreated, &b)
		if a.TraceNo <= 0 || b.TraceNo <= a.TraceNo {
			t.Fatalf("ids %d, %d", a.TraceNo, b.TraceNo)
		}
		if a.Info.TraceType != "BPF" || b.Info.TraceType != "STAP" || len(a.Info.Functions) != 2 || a.Info.Environment == nil {
			t.Errorf("answers %+v %+v", a, b)
		}
		var got []templateOut
		e.mustJSON("GET", "/traces", "", http.StatusOK, &got)
		if len(got) != 2 || got[0].TraceNo != a.TraceNo || got[1].TraceNo != b.TraceNo {
			t.Fatalf("GET /traces = %+v", got)
		}
		if got[1].Info.Environment[0] != "SYSTEMTAP_DEBUG" || got[1].Info.Value[0] != "1" || got[1].Info.Options[0] != "-v" {
			t.Errorf("stored STAP template = %+v", got[1].Info)
		}
		// Raw output spells "functions", never "funtions".
		_, raw, _ := e.do("GET", "/traces", "", nil)
		if !strings.Contains(string(raw), `"functions"`) || strings.Contains(string(raw), `"funtions"`) {
			t.Errorf("GET /traces body %s", raw)
		}
		// Removal: wrong type is unknown, then the right one deletes.
		for _, c := range []struct {
			body string
			want int
		}{
			{fmt.Sprintf(`{"removeType":"STAP","removeId":%d}`, a.TraceNo), http.StatusNotFound},
			{fmt.Sprintf(`{"removeType":"BPF","removeId":%d}`, a.TraceNo+1000), http.StatusNotFound},
			{`{"removeType":"BPF"}`, http.StatusBadRequest},
			{`{"removeType":"XDP","removeId":1}`, http.StatusBadRequest},
			{fmt.Sprintf(`{"removeType":"bpf","removeId":%d}`, a.TraceNo), http.StatusOK},
			{fmt.Sprintf(`{"removeType":"BPF","removeId":%d}`, a.TraceNo), http.StatusNotFound},
		} {
			st, body, ct := e.do("POST", "/trace/remove", c.body, nil)
			if st != c.want {
				t.Errorf("remove %s: %d %s, want %d", c.body, st, body, c.want)
			}
			if st == http.StatusOK && (string(body) != "deleted" || !strings.HasPrefix(ct, "text/plain")) {
				t.Errorf("remove answer %q %q", body, ct)
			}
		}
		e.mustJSON("GET", "/traces", "", http.StatusOK, &got)
		if len(got) != 1 || got[0].TraceNo != b.TraceNo {
			t.Errorf("after remove: %+v", got)
		}
	})

	t.Run("request errors", func(t *testing.T) {
		big := `{"process":"/bin/bash","functions":["` + strings.Repeat("a", 2<<20) + `"],"traceType":"BPF"}`
		cases := []struct {
			name, method, path, body string
			hdr                      map[string]string
			want                     int
			says                     string // the error text, when the case pins it
		}{
			{"no content type", "PUT", "/trace", bashTemplate, map[string]string{"Content-Type": ""}, http.StatusUnsupportedMediaType, ""},
			{"text content type", "PUT", "/trace", bashTemplate, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, ""},
			{"json with charset", "PUT", "/trace", bashTemplate, map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusCreated, ""},
			{"json with charset in capitals", "PUT", "/trace", bashTemplate, map[string]string{"Content-Type": "application/json; charset=UTF-8"}, http.StatusCreated, ""},
			{"json with latin-1", "PUT", "/trace", bashTemplate, map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, http.StatusUnsupportedMediaType, `Content-Type charset must be utf-8, got "iso-8859-1"`},
			{"case-variant key", "PUT", "/trace", `{"process":"/bin/bash","PROCESS":"/usr/bin/true","functions":["xmalloc"],"traceType":"BPF"}`, nil, http.StatusBadRequest, `"PROCESS": unknown key (keys are case-sensitive: did you mean "process"?)`},
			{"duplicate key", "PUT", "/trace", `{"process":"/bin/bash","process":"/usr/bin/true","functions":["xmalloc"],"traceType":"BPF"}`, nil, http.StatusBadRequest, `"process": key given twice`},
			{"both spellings", "PUT", "/trace", `{"process":"/bin/bash","functions":["xmalloc"],"funtions":["xmalloc"],"traceType":"BPF"}`, nil, http.StatusBadRequest, "functions: give functions or the seed's spelling funtions, not both"},
			{"start lasting a string", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":"10"}`, nil, http.StatusBadRequest, "lasting: must be an integer number of seconds, got a string"},
			{"too large", "PUT", "/trace", big, nil, http.StatusRequestEntityTooLarge, ""},
			{"malformed", "PUT", "/trace", `{"process":`, nil, http.StatusBadRequest, ""},
			{"wrong type", "PUT", "/trace", `{"process":"/bin/bash","functions":"xmalloc","traceType":"BPF"}`, nil, http.StatusBadRequest, ""},
			{"missing field", "PUT", "/trace", `{"process":"/bin/bash","traceType":"BPF"}`, nil, http.StatusBadRequest, ""},
			{"wrong method", "DELETE", "/trace", "", nil, http.StatusMethodNotAllowed, ""},
			{"wrong method heartbeat", "POST", "/heartbeat", "", nil, http.StatusMethodNotAllowed, ""},
			{"unknown route", "GET", "/nope", "", nil, http.StatusNotFound, ""},
			{"start unknown id", "POST", "/trace/start", `{"traceT":"BPF","traceId":999999,"lasting":10}`, nil, http.StatusNotFound, "no BPF template 999999"},
			{"start lasting 0", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":0}`, nil, http.StatusBadRequest, ""},
			{"start lasting negative", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":-5}`, nil, http.StatusBadRequest, ""},
			{"start lasting over a day", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":86401}`, nil, http.StatusBadRequest, ""},
			{"start lasting float", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":1.5}`, nil, http.StatusBadRequest, ""},
			{"start missing traceT", "POST", "/trace/start", `{"traceId":1,"lasting":10}`, nil, http.StatusBadRequest, ""},
			{"start no content type", "POST", "/trace/start", `{"traceT":"BPF","traceId":1,"lasting":10}`, map[string]string{"Content-Type": ""}, http.StatusUnsupportedMediaType, ""},
			{"running without path", "GET", "/trace/running", "", nil, http.StatusBadRequest, ""},
			{"running unknown path", "GET", "/trace/running?path=/tmp/nope.trace", "", nil, http.StatusNotFound, ""},
			{"kill missing field", "POST", "/trace/kill", `{}`, nil, http.StatusBadRequest, ""},
		}
		for _, c := range cases {
			st, body, ct := e.do(c.method, c.path, c.body, c.hdr)
			if st != c.want {
				t.Errorf("%s: %s %s = %d %s, want %d", c.name, c.method, c.path, st, clip(body), c.want)
				continue
			}
			if st >= 400 && (!strings.HasPrefix(ct, "application/json") || !json.Valid(body) || !strings.Contains(string(body), `"error"`)) {
				t.Errorf("%s: error answer %q %s is not a JSON error", c.name, ct, clip(body))
			}
			var eb struct{ Error string }
			json.Unmarshal(body, &eb)
			if c.says != "" && eb.Error != c.says {
				t.Errorf("%s: error %q, want %q", c.name, eb.Error, c.says)
			}
			for _, bad := range []string{"Go struct", "int64", "json:", "lasting: lasting", "unauthorized: unauthorized", "not found: not found"} {
				if strings.Contains(eb.Error, bad) {
					t.Errorf("%s: error %q holds %q", c.name, eb.Error, bad)
				}
			}
		}
	})

	t.Run("running lists", func(t *testing.T) {
		var all []json.RawMessage
		e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
		if len(all) != 0 {
			t.Errorf("running/all = %d entries on an idle endpoint", len(all))
		}
		st, body, ct := e.do("POST", "/trace/kill", `{"killPath":"/tmp/not-running.trace"}`, nil)
		if st != http.StatusOK || string(body) != "Killed" || !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("kill of a path not running: %d %q %q", st, body, ct)
		}
	})
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// TestHostileTemplates sends the template inputs API.md says must be
// refused: each gets 400 naming the field, and nothing is stored.
func TestHostileTemplates(t *testing.T) {
	for name, url := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := startEndpoint(t, endpointOptions{DatabaseURL: url})
			tmpl := func(process, functions, env, value, options, typ string) string {
				return fmt.Sprintf(`{"process":%s,"functions":%s,"environment":%s,"value":%s,"options":%s,"traceType":%s}`,
					process, functions, env, value, options, typ)
			}
			ok := []string{`"/bin/bash"`, `["xmalloc"]`, `[]`, `[]`, `[]`, `"BPF"`}
			cases := []struct {
				field string
				idx   int
				value string
			}{
				{"process", 0, `"bin/bash"`},
				{"process", 0, `"/bin/../bin/bash"`},
				{"process", 0, `"/bin//bash"`},
				{"process", 0, `"/bin/ba sh"`},
				{"process", 0, `"/bin/bash\"; system(\"id"`},
				{"process", 0, `"/bin/bash'"`},
				{"process", 0, `"/bin/ba\\sh"`},
				{"process", 0, `"/bin/{bash}"`},
				{"process", 0, `"/bin/bash:xmalloc"`},
				{"process", 0, `"/bin/bash\n"`},
				{"process", 0, `"/bin/bash\u0000"`},
				{"process", 0, `"/bin/$(id)"`},
				{"process", 0, `""`},
				{"functions", 1, `[]`},
				{"functions", 1, `["x} interval:s:1 { system(\"id\") }"]`},
				{"functions", 1, `["xmalloc;id"]`},
				{"functions", 1, `["a b"]`},
				{"functions", 1, `["\")"]`},
				{"functions", 1, `[""]`},
				{"functions", 1, `["x\nuprobe"]`},
				{"environment", 2, `["LD_PRELOAD"]`},
				{"environment", 2, `["PATH"]`},
				{"environment", 2, `["BPFTRACE_X;id"]`},
				{"value", 3, `["1"]`}, // length mismatch with empty environment
				{"options", 4, `["-c","id"]`},
				{"options", 4, `["--unsafe"]`},
				{"options", 4, `["-o","/etc/passwd"]`},
				{"options", 4, `["-e","BEGIN{}"]`},
				{"options", 4, `["-I","/tmp"]`},
				{"options", 4, `["--include","/etc/shadow"]`},
				{"options", 4, `["-p","1;id"]`},
				{"options", 4, `["-p"]`},
				{"options", 4, `["-B","sometimes"]`},
				{"options", 4, `["; rm -rf /"]`},
			}
			for _, c := range cases {
				parts := append([]string(nil), ok...)
				parts[c.idx] = c.value
				if c.field == "environment" {
					parts[3] = `["v"]`
				}
				body := tmpl(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
				st, res, _ := e.do("PUT", "/trace", body, nil)
				if st != http.StatusBadRequest {
					t.Errorf("%s = %s: status %d %s, want 400", c.field, c.value, st, clip(res))
					continue
				}
				var eb struct{ Error string }
				if json.Unmarshal(res, &eb) != nil || !strings.Contains(eb.Error, c.field) {
					t.Errorf("%s = %s: error %s does not name the field", c.field, c.value, res)
				}
			}
			// STAP-specific refusals.
			for _, opts := range []string{`["-g"]`, `["--guru"]`, `["-c","id"]`, `["-B","x=1"]`, `["-m","evil"]`, `["-r","/tmp"]`} {
				body := tmpl(`"/bin/bash"`, `["xmalloc"]`, `[]`, `[]`, opts, `"STAP"`)
				if st, res, _ := e.do("PUT", "/trace", body, nil); st != http.StatusBadRequest {
					t.Errorf("STAP options %s: %d %s", opts, st, clip(res))
				}
			}
			var list []templateOut
			e.mustJSON("GET", "/traces", "", http.StatusOK, &list)
			if len(list) != 0 {
				t.Fatalf("refused templates were stored: %+v", list)
			}
			// Allowed options and environment are accepted.
			e.putTemplate(tmpl(`"/bin/bash"`, `["xmalloc","x*","fre*"]`, `["BPFTRACE_STRLEN"]`, `["128"]`, `["-B","line","-f","json","--no-warnings","-p","1"]`, `"bpf"`))
		})
	}
}

// TestStartErrors covers the start refusals that need no running tracer.
func TestStartErrors(t *testing.T) {
	url := stores(t)["sqlite"]
	dir := t.TempDir()
	e := startEndpoint(t, endpointOptions{DatabaseURL: url, StapPath: filepath.Join(dir, "no-stap"), Extra: "max-traces = 1\nmax-lasting = \"1h\""})
	bpf := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF","environment":["BPFTRACE_FAKE_MODE"],"value":["silent 30"]}`)
	stap := e.putTemplate(`{"process":"/bin/bash","functions":["xmalloc"],"traceType":"STAP"}`)
	gone := filepath.Join(dir, "gone")
	bash, err := os.ReadFile("/bin/bash") // PUT reads the binary's symbols: it must be a real one
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gone, bash, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["xmalloc"],"traceType":"BPF"}`, gone))
	os.Remove(gone)

	check := func(body string, want int, mustSay string) {
		t.Helper()
		st, res, _ := e.do("POST", "/trace/start", body, nil)
		if st != want || !strings.Contains(string(res), mustSay) {
			t.Errorf("start %s = %d %s, want %d mentioning %q", body, st, res, want, mustSay)
		}
	}
	check(fmt.Sprintf(`{"traceT":"STAP","traceId":%d,"lasting":10}`, bpf), http.StatusNotFound, "")
	check(fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":3601}`, bpf), http.StatusBadRequest, "lasting")
	check(fmt.Sprintf(`{"traceT":"STAP","traceId":%d,"lasting":10}`, stap), http.StatusInternalServerError, "stap-path")
	check(fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10}`, missing), http.StatusBadRequest, gone)

	first := e.start("BPF", bpf, 30)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(e.TraceDir) + `/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.trace$`).MatchString(first.FilePath) {
		t.Errorf("filePath %q is not <trace-dir>/<uuid>.trace", first.FilePath)
	}
	check(fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":10}`, bpf), http.StatusTooManyRequests, "max-traces")
	e.do("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, first.FilePath), nil)
	// Once the tracer is gone the slot is free again.
	eventually(t, 20*time.Second, "a free trace slot", func() bool {
		st, _, _ := e.do("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":1}`, bpf), nil)
		return st == http.StatusOK
	})
}
