package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/lambda-endpoint/lambda-endpoint/actors"
	"github.com/lambda-endpoint/lambda-endpoint/auth"
	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Traces is what the API needs of the trace runtime; *actors.Runtime
// implements it.
type Traces interface {
	Start(ctx context.Context, req actors.StartRequest) (messages.StartTraceReply, error)
	Running(ctx context.Context, path string) (messages.RunningInfo, bool, error)
	All(ctx context.Context) ([]messages.RunningInfo, error)
	Kill(ctx context.Context, path string) (bool, error)
}

// Verifier checks an Authorization header; *auth.Verifier implements it.
type Verifier interface {
	Verify(ctx context.Context, header string) error
}

// Options configure a Server. Templates, Traces and Verifier are required.
type Options struct {
	Templates    persistence.Templates
	Runs         persistence.Runs // optional: GET /traces/history
	Traces       Traces
	Verifier     Verifier
	Rules        validate.Rules
	MaxLasting   time.Duration // default 24h
	MaxBodyBytes int64         // default 1 MiB
	Logger       *slog.Logger
	// Now is the clock of /heartbeat; default time.Now.
	Now func() time.Time

	// Binaries is the preflight of templates against their binaries;
	// default: binary.NewChecker(binary.DefaultMaxProbes, nil). Share one
	// with the trace runtime so that a start hits the cache PUT filled.
	Binaries *binary.Checker
}

// Server is the REST API as an http.Handler.
type Server struct {
	opts   Options
	router *httprouter.Router
	log    *slog.Logger
}

var _ http.Handler = (*Server)(nil)

// New returns the API handler.
func New(o Options) (*Server, error) {
	if o.Templates == nil || o.Traces == nil || o.Verifier == nil {
		return nil, errors.New("httpapi: Templates, Traces and Verifier are required")
	}
	if o.MaxLasting <= 0 {
		o.MaxLasting = 24 * time.Hour
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rules.EnvAllow == nil {
		o.Rules = validate.DefaultRules()
	}
	if o.Binaries == nil {
		o.Binaries = binary.NewChecker(binary.DefaultMaxProbes, nil)
	}
	s := &Server{opts: o, log: o.Logger.With("component", "httpapi")}
	r := httprouter.New()
	r.GET("/heartbeat", s.heartbeat)
	r.GET("/traces", s.listTemplates)
	r.PUT("/trace", s.putTemplate)
	r.POST("/trace/remove", s.removeTemplate)
	r.POST("/trace/start", s.startTrace)
	r.GET("/trace/running", s.runningTrace)
	r.GET("/traces/running/all", s.allRunning)
	r.POST("/trace/kill", s.killTrace)
	r.GET("/traces/history", s.history)
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+req.URL.Path)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed on "+req.URL.Path)
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v interface{}) {
		s.log.Error("handler panicked", "path", req.URL.Path, "panic", v)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
	s.router = r
	return s, nil
}

// ServeHTTP authenticates the request, then routes it. Every route needs
// the Authorization header, /heartbeat included.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if err := s.opts.Verifier.Verify(req.Context(), req.Header.Get("Authorization")); err != nil {
		if errors.Is(err, auth.ErrBusy) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "too many authorizations being verified; retry")
			return
		}
		s.log.Debug("request refused", "path", req.URL.Path, "remote", req.RemoteAddr, "err", err)
		writeError(w, http.StatusUnauthorized, "unauthorized: "+err.Error())
		return
	}
	s.router.ServeHTTP(w, req)
}
