package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

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
	submitSeconds *prometheus.HistogramVec
	lastAck       prometheus.Gauge
}

// Engines are the engine label's values: how a trace is run. A STAP
// template is run by SystemTap ("stap"); a BPF one by bpftrace or the
// native engine.
var Engines = []string{string(messages.EngineBPFtrace), string(messages.EngineNative), "stap"}

// engineLabel is the engine label of e.
func engineLabel(e messages.TraceEvent) string {
	if e.Engine == "" {
		if e.Type == messages.STAP {
			return "stap"
		}
		return string(messages.EngineBPFtrace)
	}
	return string(e.Engine)
}

// Build describes the running binary for lambda_build_info.
type Build struct {
	Version   string // the endpoint's version (main.version), "unknown" when not set
	GoVersion string // runtime.Version()
}

// New returns a Metrics with every family registered and initialised, plus
// the Go runtime and process collectors and lambda_build_info of b.
func New(b Build) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tracesRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lambda_traces_running",
			Help: "Traces whose tracer is running now.",
		}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambda_traces_started_total",
			Help: "Traces whose tracer was launched, by tracer type, mode and engine (bpftrace, native, stap).",
		}, []string{"type", "mode", "engine"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lambda_traces_finished_total",
			Help: "Traces whose finished message the platform acknowledged, by reason and engine.",
		}, []string{"reason", "engine"}),
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
		submitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lambda_submit_duration_seconds",
			Help: "Time from sending a PUT /submit to the platform's 2xx answer, of acknowledged attempts, by message kind (start, chunk, finished).",
			// 1 ms to about 30 s: a local platform to a slow, distant one.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		lastAck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lambda_submit_last_ack_timestamp_seconds",
			Help: "Unix time of the platform's last 2xx answer to a PUT /submit (0: none yet): how long ago the platform was last reachable.",
		}),
	}
	if b.Version == "" {
		b.Version = "unknown"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "lambda_build_info",
		Help:        "Always 1; its labels say which endpoint binary runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "goversion": b.GoVersion},
	})
	build.Set(1)
	m.reg.MustRegister(
		m.tracesRunning, m.started, m.finished, m.outputBytes, m.chunksAcked, m.chunkBytes,
		m.retries, m.spoolBytes, m.lostEvents, m.authFailures, m.httpRequests, m.submitSeconds, m.lastAck, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, mode := range []messages.Mode{messages.ModeEvents, messages.ModeCalls, messages.ModeSummary} {
		m.started.WithLabelValues(string(messages.BPF), string(mode), string(messages.EngineBPFtrace))
		m.started.WithLabelValues(string(messages.BPF), string(mode), string(messages.EngineNative))
		m.started.WithLabelValues(string(messages.STAP), string(mode), "stap")
	}
	for _, r := range Reasons {
		for _, e := range Engines {
			m.finished.WithLabelValues(r, e)
		}
	}
	for _, k := range []string{"start", "chunk", "finished"} {
		m.submitSeconds.WithLabelValues(k)
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
func (m *Metrics) TraceStarted(e messages.TraceEvent) {
	if m == nil {
		return
	}
	mode := e.Mode
	if mode == "" {
		mode = messages.ModeEvents
	}
	m.started.WithLabelValues(string(e.Type), string(mode), engineLabel(e)).Inc()
	m.tracesRunning.Inc()
}

// TracerExited counts one running tracer less.
func (m *Metrics) TracerExited(messages.TraceEvent) {
	if m == nil {
		return
	}
	m.tracesRunning.Dec()
}

// TraceFinished counts a trace whose finished message was acknowledged.
func (m *Metrics) TraceFinished(e messages.TraceEvent, f messages.TraceFinished) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(f.Reason, engineLabel(e)).Inc()
}

// OutputRead counts n bytes of tracer output read.
func (m *Metrics) OutputRead(_ messages.TraceEvent, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.outputBytes.Add(float64(n))
}

// ChunkAcked counts chunks the platform acknowledged, holding n raw bytes
// in all.
func (m *Metrics) ChunkAcked(_ messages.TraceEvent, chunks, n int64) {
	if m == nil {
		return
	}
	m.chunksAcked.Add(float64(chunks))
	m.chunkBytes.Add(float64(n))
}

// SpoolBytes moves the bytes read but not yet acknowledged by delta.
func (m *Metrics) SpoolBytes(_ messages.TraceEvent, delta int64) {
	if m == nil {
		return
	}
	m.spoolBytes.Add(float64(delta))
	m.backlog.Add(delta)
}

// SubmitAcked observes an acknowledged PUT /submit of kind that took took
// (platform.Options.OnAcked) and sets the time of the last acknowledgement
// to now.
func (m *Metrics) SubmitAcked(kind string, took time.Duration, now time.Time) {
	if m == nil {
		return
	}
	m.submitSeconds.WithLabelValues(kind).Observe(took.Seconds())
	m.lastAck.Set(float64(now.UnixNano()) / 1e9)
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
func (m *Metrics) LostEvents(_ messages.TraceEvent, n int64) {
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
