package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
)

// TestOpenAPI keeps docs/openapi.yaml true: every route of the real
// endpoint is called for its success and its error answers, each request
// (when it is a valid one) and each response is validated against the
// document, and a status the document does not list fails.
func TestOpenAPI(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("loading docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})
	doc.Servers = openapi3.Servers{{URL: e.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}

	// call sends a request, validates it (when validRequest) and its
	// answer, requires status want and returns the body.
	call := func(name, method, path, ct, body string, hdr map[string]string, validRequest bool, want int) []byte {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, e.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", authHeader)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range hdr {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s: %s %s is not in the document: %v", name, method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if validRequest {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s: the request does not match the document: %v", name, err)
			}
			req.Body = io.NopCloser(strings.NewReader(body)) // ValidateRequest read it
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Errorf("%s: %s %s answered %d, want %d: %s", name, method, path, res.StatusCode, want, b)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Options: opts}
		out.SetBodyBytes(b)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s: the %d answer of %s %s does not match the document: %v\n%s", name, res.StatusCode, method, path, err, b)
		}
		return b
	}
	const js = "application/json"
	noAuth := map[string]string{"Authorization": ""}

	call("heartbeat", "GET", "/heartbeat", "", "", nil, true, 200)
	call("heartbeat without auth", "GET", "/heartbeat", "", "", noAuth, false, 401)
	call("templates, none", "GET", "/traces", "", "", nil, true, 200)
	call("templates without auth", "GET", "/traces", "", "", noAuth, false, 401)

	var tmpl struct{ TraceNo int64 }
	json.Unmarshal(call("put template", "PUT", "/trace", js, fakeTemplate("lines 100000 20ms"), nil, true, 201), &tmpl)
	call("put template, seed spelling", "PUT", "/trace", js, bashTemplate, nil, true, 201)
	call("put template, bad field", "PUT", "/trace", js, `{"process":"relative","functions":["x"],"traceType":"BPF"}`, nil, false, 400)
	call("put template, unknown field", "PUT", "/trace", js, `{"process":"/bin/bash","functions":["xmalloc"],"traceType":"BPF","colour":1}`, nil, false, 400)
	call("put template, text", "PUT", "/trace", "text/plain", bashTemplate, nil, false, 415)
	call("put template, too big", "PUT", "/trace", js, `{"process":"`+strings.Repeat("a", 2<<20)+`"}`, nil, false, 413)
	call("templates", "GET", "/traces", "", "", nil, true, 200)

	call("start, unknown id", "POST", "/trace/start", js, `{"traceT":"BPF","traceId":999,"lasting":10}`, nil, true, 404)
	call("start, bad lasting", "POST", "/trace/start", js, fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":0}`, tmpl.TraceNo), nil, false, 400)
	var s started
	json.Unmarshal(call("start", "POST", "/trace/start", js, fmt.Sprintf(`{"traceT":"bpf","traceId":%d,"lasting":60,"mode":"events"}`, tmpl.TraceNo), nil, true, 200), &s)

	call("running", "GET", "/trace/running?path="+s.FilePath, "", "", nil, true, 200)
	call("running, no path", "GET", "/trace/running", "", "", nil, true, 400)
	call("running, unknown path", "GET", "/trace/running?path=/tmp/nothing.trace", "", "", nil, true, 404)
	call("running, all", "GET", "/traces/running/all", "", "", nil, true, 200)
	call("kill", "POST", "/trace/kill", js, fmt.Sprintf(`{"killPath":%q}`, s.FilePath), nil, true, 200)
	call("kill, not running", "POST", "/trace/kill", js, `{"killPath":"/tmp/nothing.trace"}`, nil, true, 200)
	call("kill, no path", "POST", "/trace/kill", js, `{}`, nil, false, 400)
	waitFinished(t, p, s.FilePath, 60*1e9)

	call("history", "GET", "/traces/history?limit=5", "", "", nil, true, 200)
	call("history, bad limit", "GET", "/traces/history?limit=0", "", "", nil, true, 400)

	call("remove", "POST", "/trace/remove", js, fmt.Sprintf(`{"removeType":"BPF","removeId":%d}`, tmpl.TraceNo), nil, true, 200)
	call("remove again", "POST", "/trace/remove", js, fmt.Sprintf(`{"removeType":"BPF","removeId":%d}`, tmpl.TraceNo), nil, true, 404)
	call("remove, malformed", "POST", "/trace/remove", js, `{"removeType":"BPF"`, nil, false, 400)
}
