package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
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
	Templates persistence.Templates
	Runs      persistence.Runs // optional: GET /traces/history
	// Finished is optional: the stderr tails of recently finished runs,
	// shown in GET /traces/history as stderrTail.
	Finished     *FinishedLog
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

	// Observer hears every answered request and every refused
	// authorization (for metrics); default: nothing.
	Observer Observer
}

// Observer hears what the API answers. metrics.Metrics implements it.
type Observer interface {
	// HTTPRequest: a request to route (the route pattern, or "unmatched")
	// was answered with code, 401s and authorization 503s included.
	HTTPRequest(route string, code int)
	// AuthFailed: a request was refused with 401.
	AuthFailed()
}

type nopObserver struct{}

func (nopObserver) HTTPRequest(string, int) {}
func (nopObserver) AuthFailed()             {}

// Server is the REST API as an http.Handler.
type Server struct {
	opts   Options
	router *httprouter.Router
	routes map[string]bool // registered paths, for logs
	log    *slog.Logger
	clock  func() time.Time // of the log rate limits; tests replace it

	refusedLog, busyLog rateLimiter // WARN lines of failed authorizations
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
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	s := &Server{
		opts: o, log: o.Logger.With("component", "httpapi"), routes: map[string]bool{}, clock: time.Now,
		refusedLog: rateLimiter{period: time.Second}, busyLog: rateLimiter{period: time.Second},
	}
	r := httprouter.New()
	for _, rt := range []struct {
		method, path string
		h            httprouter.Handle
	}{
		{http.MethodGet, "/heartbeat", s.heartbeat},
		{http.MethodGet, "/traces", s.listTemplates},
		{http.MethodPut, "/trace", s.putTemplate},
		{http.MethodPost, "/trace/remove", s.removeTemplate},
		{http.MethodPost, "/trace/start", s.startTrace},
		{http.MethodGet, "/trace/running", s.runningTrace},
		{http.MethodGet, "/traces/running/all", s.allRunning},
		{http.MethodPost, "/trace/kill", s.killTrace},
		{http.MethodGet, "/traces/history", s.history},
	} {
		r.Handle(rt.method, rt.path, rt.h)
		s.routes[rt.path] = true
	}
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %.200q", req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// httprouter has set Allow, listing OPTIONS although HandleOPTIONS
		// is off (OPTIONS gets this 405 too): leave it out.
		var allowed []string
		for _, m := range strings.Split(w.Header().Get("Allow"), ", ") {
			if m != http.MethodOptions {
				allowed = append(allowed, m)
			}
		}
		allow := strings.Join(allowed, ", ")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %.16q not allowed on %s (allowed: %s)",
			req.Method, req.URL.Path, allow))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.log.Error("handler panicked", "route", s.routeOf(req), "panic", v, "stack", string(debug.Stack()))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
	s.router = r
	return s, nil
}

// unauthorizedBody is the one answer to every refused Authorization
// header, whatever was wrong with it (missing, malformed, another scheme such
// as Bearer, another endpoint, a cost outside the window, a wrong secret):
// a caller learns the expected format, never which part failed.
const unauthorizedBody = "unauthorized: the Authorization header must be <endpoint-uuid>$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash> (or argon2i) of this endpoint's secret"

// wwwAuthenticate is sent with every 401: the same format hint as a
// challenge (RFC 9110 section 11.6.1), identical for every refusal.
const wwwAuthenticate = `Argon2 realm="lambda-endpoint", format="<endpoint-uuid>$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt>$<hash>"`

// ServeHTTP authenticates the request, then routes it, and logs it. Every
// route needs the Authorization header, /heartbeat included.
//
// Logging: one line per authorized request at INFO (method, route, status,
// duration, remote, and the error of a refused request); 5xx answers at
// ERROR (503 at WARN). Refused and busy authorizations are logged at WARN at
// most once a second each, the line counting those left out since the last
// one. The Authorization value is never logged.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	if err := s.opts.Verifier.Verify(req.Context(), req.Header.Get("Authorization")); err != nil {
		if errors.Is(err, auth.ErrBusy) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "authorization busy: too many headers being verified; retry after a second")
			s.logAuth(&s.busyLog, "authorization busy", req, http.StatusServiceUnavailable, err)
			s.opts.Observer.HTTPRequest(s.routeOf(req), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		s.logAuth(&s.refusedLog, "authorization refused", req, http.StatusUnauthorized, err)
		s.opts.Observer.AuthFailed()
		s.opts.Observer.HTTPRequest(s.routeOf(req), http.StatusUnauthorized)
		return
	}
	rec := &recorder{ResponseWriter: w}
	s.router.ServeHTTP(rec, req)
	s.logRequest(req, rec, time.Since(start))
	s.opts.Observer.HTTPRequest(s.routeOf(req), rec.statusCode())
}

// routeOf is the route pattern of req for logs: its path if it names a
// route (all routes are static), else "unmatched", so that logs do not
// carry arbitrary caller-chosen paths as routes.
func (s *Server) routeOf(req *http.Request) string {
	if s.routes[req.URL.Path] {
		return req.URL.Path
	}
	return "unmatched"
}

func (s *Server) logRequest(req *http.Request, rec *recorder, d time.Duration) {
	status := rec.statusCode()
	level := slog.LevelInfo
	switch {
	case status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", req.Method), slog.String("route", s.routeOf(req)), slog.Int("status", status),
		slog.Float64("duration_seconds", d.Seconds()), slog.String("remote", req.RemoteAddr),
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("err", rec.err.Error()))
	}
	s.log.LogAttrs(req.Context(), level, "request", attrs...)
}

// logAuth logs a refused or busy authorization at WARN through limiter l.
func (s *Server) logAuth(l *rateLimiter, msg string, req *http.Request, status int, err error) {
	ok, suppressed := l.allow(s.clock())
	if !ok {
		return
	}
	s.log.LogAttrs(req.Context(), slog.LevelWarn, msg,
		slog.String("method", req.Method), slog.String("route", s.routeOf(req)), slog.Int("status", status),
		slog.String("remote", req.RemoteAddr), slog.String("err", err.Error()), slog.Int64("suppressed", suppressed))
}

// rateLimiter lets one event through per period and counts the others.
type rateLimiter struct {
	period time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int64
}

// allow reports whether an event at now may be logged, and how many events
// were suppressed since the last one allowed.
func (l *rateLimiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.period {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// recorder remembers the status a handler wrote and the error it failed
// with, for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
