package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// traceFoundHeader is the header of the POST /trace/kill answer that says
// whether a trace ran at the path (httpapi.TraceFoundHeader).
const traceFoundHeader = "Lambda-Trace-Found"

// Client speaks the endpoint's REST API with one Authorization value.
type Client struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:3000.
	Endpoint string
	// Authorization is the header value sent with every request.
	Authorization string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
	// Source says where Endpoint came from ("server.listen in FILE",
	// "--endpoint"), for the hint of a refused connection.
	Source string
	// CA is the file of CA certificates that HTTP trusts besides the
	// system's, if any, and CAFrom where it was named ("--ca",
	// "server.tls-cert"): for the hint of a certificate that does not
	// verify.
	CA, CAFrom string
}

// ConnectError is a request that did not reach the endpoint (or reached
// something that is not it), with what to check.
type ConnectError struct {
	URL    string // the endpoint's base URL
	Reason string // what happened, e.g. "connection refused"
	Hint   string // what to check, may be empty
	Err    error  // the transport's error, if any
}

func (e *ConnectError) Error() string {
	s := fmt.Sprintf("connecting to %s: %s", e.URL, e.Reason)
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

func (e *ConnectError) Unwrap() error { return e.Err }

// NewHTTPClient returns the client the commands use: a 30 s timeout, and
// with caFile the PEM certificates in it trusted as roots besides the
// system's (for an endpoint with a self-signed certificate).
func NewHTTPClient(caFile string) (*http.Client, error) { return newHTTPClient(caFile, "--ca") }

// newHTTPClient is NewHTTPClient; from names caFile's origin in errors.
func newHTTPClient(caFile, from string) (*http.Client, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", from, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading %s %s: no PEM certificate in it", from, caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.Transport = tr
	return c, nil
}

// APIError is a non-2xx answer of the endpoint.
type APIError struct {
	Method, Path string
	Status       int
	Message      string // the "error" of a JSON error body, or the body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Template is a stored template as GET /traces lists it.
type Template struct {
	TraceNo int64        `json:"traceNo"`
	Info    TemplateInfo `json:"info"`
}

// TemplateInfo is API.md's TemplateInfo.
type TemplateInfo struct {
	Process     string   `json:"process"`
	Functions   []string `json:"functions"`
	Environment []string `json:"environment"`
	Value       []string `json:"value"`
	Options     []string `json:"options"`
	TraceType   string   `json:"traceType"`
}

// Running is API.md's RunningInfo, as the CLI shows it. LostEvents is nil
// while the endpoint does not report it.
type Running struct {
	TemplateInfo
	TraceNo         int64     `json:"traceNo"`
	Thread          int64     `json:"thread"`
	FilePath        string    `json:"filePath"`
	StartedAt       time.Time `json:"startedAt"`
	Lasting         int64     `json:"lasting"`
	Mode            string    `json:"mode"`
	Engine          string    `json:"engine,omitempty"`
	State           string    `json:"state"`
	PID             int       `json:"pid,omitempty"`
	BytesRead       int64     `json:"bytesRead"`
	BytesSubmitted  int64     `json:"bytesSubmitted"`
	ChunksSubmitted int64     `json:"chunksSubmitted"`
	Reason          string    `json:"reason,omitempty"`
	LostEvents      *int64    `json:"lostEvents,omitempty"`
}

// Started is the answer of POST /trace/start.
type Started struct {
	Thread   int64  `json:"thread"`
	FilePath string `json:"filePath"`
}

// StartRequest is the body of POST /trace/start.
type StartRequest struct {
	TraceT  string `json:"traceT"`
	TraceID int64  `json:"traceId"`
	Lasting int64  `json:"lasting"`
	Mode    string `json:"mode,omitempty"`
	Engine  string `json:"engine,omitempty"` // omitted: the endpoint's lambda.engine
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Endpoint, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", c.Authorization)
	return req, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends a request with body (JSON-encoded unless nil) and returns the
// answer's body; a non-2xx answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	b, _, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// send sends req and returns the answer's body and header; a non-2xx
// answer is an *APIError, a request that did not reach the endpoint a
// *ConnectError when the cause is known.
func (c *Client) send(req *http.Request) ([]byte, http.Header, error) {
	method, path := req.Method, req.URL.RequestURI()
	res, err := c.httpClient().Do(req)
	if err != nil {
		if ce := c.connectError(err); ce != nil {
			return nil, nil, ce
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its "Get \"URL\":" repeats what the prefix says
		}
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if res.StatusCode == http.StatusBadRequest && bytes.HasPrefix(b, []byte("Client sent an HTTP request to an HTTPS server")) {
		// Go's TLS server answering a plain HTTP request.
		return nil, nil, &ConnectError{URL: c.Endpoint, Reason: "the endpoint speaks HTTPS",
			Hint: "use an https:// URL (--endpoint https://HOST:PORT, with --ca FILE for a self-signed certificate)"}
	}
	if res.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, nil, &APIError{Method: method, Path: path, Status: res.StatusCode, Message: msg}
	}
	return b, res.Header, nil
}

// connectError explains a transport error whose cause a user can fix, or
// returns nil.
func (c *Client) connectError(err error) *ConnectError {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		hint := "is `lambda-endpoint serve` running there?"
		if c.Source != "" {
			hint += " (" + c.Source + ")"
		}
		return &ConnectError{URL: c.Endpoint, Reason: "connection refused", Hint: hint, Err: err}
	case errors.As(err, &unknownCA):
		hint := "give the CA certificate that signed the server's with --ca FILE"
		if c.CA != "" {
			hint = fmt.Sprintf("%s %s does not hold the CA certificate that signed the server's", c.CAFrom, c.CA)
			if c.CAFrom == "server.tls-cert" {
				hint += ": give it with --ca FILE"
			}
		}
		return &ConnectError{URL: c.Endpoint, Reason: "the server's certificate is signed by an unknown authority", Hint: hint, Err: err}
	case errors.As(err, &hostname):
		return &ConnectError{URL: c.Endpoint, Reason: "the server's certificate is not valid for " + hostname.Host,
			Hint: "use a host name or address the certificate holds", Err: err}
	case errors.As(err, &invalid):
		return &ConnectError{URL: c.Endpoint, Reason: "the server's certificate is not valid: " + invalid.Error(), Err: err}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &ConnectError{URL: c.Endpoint, Reason: "the endpoint speaks plain HTTP", Hint: "use an http:// URL", Err: err}
	}
	return nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return b, nil
}

// Templates lists the stored templates (GET /traces).
func (c *Client) Templates(ctx context.Context) ([]Template, []byte, error) {
	var ts []Template
	raw, err := c.getJSON(ctx, "GET", "/traces", nil, &ts)
	return ts, raw, err
}

// AddTemplate stores a template (PUT /trace).
func (c *Client) AddTemplate(ctx context.Context, t TemplateInfo) (Template, []byte, error) {
	var out Template
	raw, err := c.getJSON(ctx, "PUT", "/trace", t, &out)
	return out, raw, err
}

// RemoveTemplate deletes template (typ, id) (POST /trace/remove).
func (c *Client) RemoveTemplate(ctx context.Context, typ string, id int64) error {
	_, err := c.do(ctx, "POST", "/trace/remove", map[string]any{"removeType": typ, "removeId": id})
	return err
}

// Start starts a trace (POST /trace/start).
func (c *Client) Start(ctx context.Context, r StartRequest) (Started, []byte, error) {
	var s Started
	raw, err := c.getJSON(ctx, "POST", "/trace/start", r, &s)
	return s, raw, err
}

// Running lists the running traces (GET /traces/running/all).
func (c *Client) Running(ctx context.Context) ([]Running, []byte, error) {
	var rs []Running
	raw, err := c.getJSON(ctx, "GET", "/traces/running/all", nil, &rs)
	return rs, raw, err
}

// RunningOne returns one trace's RunningInfo (GET /trace/running?path=);
// ok is false when the endpoint no longer lists it (404).
func (c *Client) RunningOne(ctx context.Context, path string) (Running, bool, error) {
	var r Running
	_, err := c.getJSON(ctx, "GET", "/trace/running?path="+url.QueryEscape(path), nil, &r)
	if e, isAPI := err.(*APIError); isAPI && e.Status == http.StatusNotFound {
		return r, false, nil
	}
	return r, err == nil, err
}

// Kill kills a running trace (POST /trace/kill). found is false when the
// endpoint says nothing ran at path (header Lambda-Trace-Found: false); an
// endpoint that does not say is taken at its word "Killed".
func (c *Client) Kill(ctx context.Context, path string) (found bool, err error) {
	b, err := json.Marshal(map[string]string{"killPath": path})
	if err != nil {
		return false, fmt.Errorf("encoding request: %w", err)
	}
	req, err := c.newRequest(ctx, "POST", "/trace/kill", bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	_, h, err := c.send(req)
	if err != nil {
		return false, err
	}
	found, perr := strconv.ParseBool(h.Get(traceFoundHeader))
	return found || perr != nil, nil
}

// Run is one run of the endpoint's run history (GET /traces/history).
type Run struct {
	TemplateInfo
	FilePath           string     `json:"filePath"`
	TraceNo            int64      `json:"traceNo"`
	Thread             int64      `json:"thread"`
	Mode               string     `json:"mode"`
	Engine             string     `json:"engine,omitempty"`
	StartedAt          time.Time  `json:"startedAt"`
	Lasting            int64      `json:"lasting"`
	State              string     `json:"state"` // running, delivering, finished or interrupted
	Reason             string     `json:"reason,omitempty"`
	Code               *int       `json:"code,omitempty"`
	BytesRead          int64      `json:"bytesRead"`
	ChunksAcknowledged int64      `json:"chunksAcknowledged"`
	SHA256             string     `json:"sha256,omitempty"`
	FinishedAt         *time.Time `json:"finishedAt,omitempty"`
	// StderrTail is the end of the tracer's stderr; nil when the endpoint
	// does not have it (it keeps it for the runs it saw finish).
	StderrTail *string `json:"stderrTail,omitempty"`
}

// History is one page of GET /traces/history, newest run first.
type History struct {
	Runs []Run `json:"runs"`
	// Next is the cursor of the following page, empty on the last.
	Next string `json:"next,omitempty"`
}

// HistoryQuery selects runs of the history; zero values leave the
// endpoint's defaults.
type HistoryQuery struct {
	Limit  int
	States []string
	Before string
	Path   string // the run of this trace only
}

// History reads the run history (GET /traces/history).
func (c *Client) History(ctx context.Context, q HistoryQuery) (History, []byte, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(q.States) > 0 {
		v.Set("state", strings.Join(q.States, ","))
	}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if q.Path != "" {
		v.Set("path", q.Path)
	}
	path := "/traces/history"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var h History
	raw, err := c.getJSON(ctx, "GET", path, nil, &h)
	return h, raw, err
}

// RunOf returns the run of the trace at path; ok is false when the history
// holds none.
func (c *Client) RunOf(ctx context.Context, path string) (r Run, ok bool, err error) {
	h, _, err := c.History(ctx, HistoryQuery{Path: path})
	if err != nil || len(h.Runs) == 0 {
		return Run{}, false, err
	}
	return h.Runs[0], true, nil
}
