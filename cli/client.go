package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client speaks the endpoint's REST API with one Authorization value.
type Client struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:3000.
	Endpoint string
	// Authorization is the header value sent with every request.
	Authorization string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
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
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Endpoint, "/")+path, r)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", c.Authorization)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &APIError{Method: method, Path: path, Status: res.StatusCode, Message: msg}
	}
	return b, nil
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

// Kill kills a running trace (POST /trace/kill).
func (c *Client) Kill(ctx context.Context, path string) error {
	_, err := c.do(ctx, "POST", "/trace/kill", map[string]string{"killPath": path})
	return err
}
