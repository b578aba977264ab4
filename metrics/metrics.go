package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Reasons are the finished reasons whose counters exist from start-up.
// A reason not listed here still gets its own series when it first occurs.
var Reasons = []string{
	messages.ReasonCompleted, messages.ReasonKilled, messages.ReasonTimedOut,
	messages.ReasonFailedToStart, messages.ReasonShutdown, messages.ReasonInterrupted,
	messages.ReasonSpoolFull, messages.ReasonSpoolError,
	"failed", "memory-limit", "binary-changed",
}

// Routes are the REST API's route patterns, whose request counters exist
// from start-up with code "200".
var Routes = []string{
	"/heartbeat", "/traces", "/trace", "/trace/remove", "/trace/start",
	"/trace/running", "/traces/running/all", "/trace/kill", "/traces/history",
}

// Metrics is the endpoint's set of metric families. Its methods are safe
// for concurrent use. The zero value is not usable; a nil *Metrics is: every
// method of a nil *Metrics does nothing, so a component may hold one
// unconditionally.
type Metrics struct {
	reg *prometheus.Registry

	tracesRunning prometheus.Gauge
	started       *prometheus.CounterVec
	finished      *prometheus.CounterVec
	outputBytes   prometheus.Counter
	chunksAcked   prometheus.Counter
	chunkBytes    prometheus.Counter
	retries       prometheus.Counter
	spoolBytes    prometheus.Gauge
	backlog       atomic.Int64 // spoolBytes, readable
	lostEvents    prometheus.Counter
	authFailures  prometheus.Counter
	httpRequests  *prometheus.CounterVec
}

// New returns a Metrics with every family registered and initialised, plus
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tracesRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lambda_traces_running",
			Help: "Traces whose tracer is running now.",
		}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambda_traces_started_total",
			Help: "Traces started (answered 200 by POST /trace/start), by tracer type and mode.",
		}, []string{"type", "mode"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambda_traces_finished_total",
			Help: "Traces whose finished message the platform acknowledged, by reason.",
		}, []string{"reason"}),
		outputBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_output_bytes_total",
			Help: "Bytes of tracer output read (stdout).",
		}),
		chunksAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_chunks_acknowledged_total",
			Help: "Chunks the platform acknowledged with a 2xx.",
		}),
		chunkBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_chunk_bytes_acknowledged_total",
			Help: "Raw tracer-output bytes in the chunks the platform acknowledged.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_submit_retries_total",
			Help: "PUT /submit attempts that failed and were retried.",
		}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lambda_spool_bytes",
			Help: "Tracer output read but not yet acknowledged by the platform.",
		}),
		lostEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_tracer_lost_events_total",
			Help: "Events the tracers reported they dropped.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lambda_auth_failures_total",
			Help: "Requests refused with 401.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambda_http_requests_total",
			Help: "REST API requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(
		m.tracesRunning, m.started, m.finished, m.outputBytes, m.chunksAcked, m.chunkBytes,
		m.retries, m.spoolBytes, m.lostEvents, m.authFailures, m.httpRequests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, t := range []messages.TraceType{messages.BPF, messages.STAP} {
		for _, mode := range []messages.Mode{messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
			m.started.WithLabelValues(string(t), string(mode))
		}
	}
	for _, r := range Reasons {
		m.finished.WithLabelValues(r)
	}
	for _, r := range Routes {
		m.httpRequests.WithLabelValues(r, "200")
	}
	return m
}

// Handler serves the Prometheus text exposition of m's registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is m's registry, for embedders who add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// TraceStarted counts a started trace and one more running tracer.
func (m *Metrics) TraceStarted(t messages.TraceType, mode messages.Mode) {
	if m == nil {
		return
	}
	if mode == "" {
		mode = messages.ModeEvents
	}
	m.started.WithLabelValues(string(t), string(mode)).Inc()
	m.tracesRunning.Inc()
}

// TracerExited counts one running tracer less.
func (m *Metrics) TracerExited(messages.TraceType, messages.Mode) {
	if m == nil {
		return
	}
	m.tracesRunning.Dec()
}

// TraceFinished counts a trace whose finished message was acknowledged.
func (m *Metrics) TraceFinished(_ messages.TraceType, _ messages.Mode, reason string) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(reason).Inc()
}

// OutputRead counts n bytes of tracer output read.
func (m *Metrics) OutputRead(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.outputBytes.Add(float64(n))
}

// ChunkAcked counts a chunk of n raw bytes the platform acknowledged.
func (m *Metrics) ChunkAcked(n int64) {
	if m == nil {
		return
	}
	m.chunksAcked.Inc()
	m.chunkBytes.Add(float64(n))
}

// SpoolBytes moves the bytes read but not yet acknowledged by delta.
func (m *Metrics) SpoolBytes(delta int64) {
	if m == nil {
		return
	}
	m.spoolBytes.Add(float64(delta))
	m.backlog.Add(delta)
}

// SpoolBacklog is lambda_spool_bytes now (0 for a nil Metrics): for logs.
func (m *Metrics) SpoolBacklog() int64 {
	if m == nil {
		return 0
	}
	return m.backlog.Load()
}

// SubmitRetry counts a failed PUT /submit attempt that will be retried
// (kind: which message, not a label: the total is what alerts need).
func (m *Metrics) SubmitRetry(string) {
	if m == nil {
		return
	}
	m.retries.Inc()
}

// LostEvents counts n events a tracer reported it dropped.
func (m *Metrics) LostEvents(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.lostEvents.Add(float64(n))
}

// AuthFailed counts a request refused with 401.
func (m *Metrics) AuthFailed() {
	if m == nil {
		return
	}
	m.authFailures.Inc()
}

// HTTPRequest counts a request to route (the route pattern, never the raw
// path, so that the label set stays bounded) answered with code.
func (m *Metrics) HTTPRequest(route string, code int) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}
