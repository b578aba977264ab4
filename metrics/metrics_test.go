package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// scrape parses the exposition served by h.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	return testsupport.ParseMetrics(t, rec.Body)
}

var value = testsupport.MetricValue

func TestFamiliesPresentFromStart(t *testing.T) {
	fams := scrape(t, New(Build{Version: "v1.2.3", GoVersion: "go1.26.0"}).Handler())
	for _, tc := range []struct {
		name   string
		labels []string
	}{
		{"lambda_traces_running", nil},
		{"lambda_traces_started_total", []string{"engine=bpftrace", "mode=events", "type=BPF"}},
		{"lambda_traces_started_total", []string{"engine=native", "mode=calls", "type=BPF"}},
		{"lambda_traces_started_total", []string{"engine=stap", "mode=summary", "type=STAP"}},
		{"lambda_traces_finished_total", []string{"engine=bpftrace", "reason=completed"}},
		{"lambda_traces_finished_total", []string{"engine=native", "reason=failed"}},
		{"lambda_traces_finished_total", []string{"engine=stap", "reason=interrupted"}},
		{"lambda_submit_duration_seconds_count", []string{"kind=chunk"}},
		{"lambda_submit_last_ack_timestamp_seconds", nil},
		{"lambda_output_bytes_total", nil},
		{"lambda_chunks_acknowledged_total", nil},
		{"lambda_submit_retries_total", nil},
		{"lambda_spool_bytes", nil},
		{"lambda_tracer_lost_events_total", nil},
		{"lambda_auth_failures_total", nil},
		{"lambda_http_requests_total", []string{"code=200", "route=/heartbeat"}},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
		{"lambda_build_info", []string{"goversion=go1.26.0", "version=v1.2.3"}},
	} {
		v, ok := value(fams, tc.name, tc.labels...)
		if !ok {
			t.Errorf("%s%v: missing at start", tc.name, tc.labels)
		} else if v != 0 && !strings.HasPrefix(tc.name, "go_") && !strings.HasPrefix(tc.name, "process_") && tc.name != "lambda_build_info" {
			t.Errorf("%s%v = %v at start, want 0", tc.name, tc.labels, v)
		}
	}
}

func TestEventsMoveTheCounters(t *testing.T) {
	m := New(Build{})
	bpf := messages.TraceEvent{Path: "/tmp/a.trace", Type: messages.BPF}
	native := messages.TraceEvent{Path: "/tmp/n.trace", Type: messages.BPF, Mode: messages.ModeCalls, Engine: messages.EngineNative}
	stap := messages.TraceEvent{Path: "/tmp/b.trace", Type: messages.STAP, Mode: messages.ModeCalls}
	m.TraceStarted(bpf)
	m.TraceStarted(stap)
	m.TraceStarted(native)
	m.TracerExited(bpf)
	m.OutputRead(bpf, 1000)
	m.SpoolBytes(bpf, 1000)
	m.ChunkAcked(bpf, 3, 600)
	m.SpoolBytes(bpf, -600)
	m.SpoolBytes(bpf, 50)
	m.SpoolBytes(bpf, -10)
	m.SubmitRetry("chunk")
	m.SubmitRetry("finished")
	m.SubmitAcked("chunk", 3*time.Millisecond, time.Unix(1700000000, 500_000_000))
	m.SubmitAcked("chunk", 40*time.Second, time.Unix(1700000001, 0))
	m.LostEvents(bpf, 402)
	m.LostEvents(bpf, 0)
	m.AuthFailed()
	m.HTTPRequest("/trace/start", 429)
	m.TraceFinished(bpf, messages.TraceFinished{Reason: "completed"})
	m.TraceFinished(native, messages.TraceFinished{Reason: "killed"})
	m.TraceFinished(bpf, messages.TraceFinished{Reason: "something-new"})
	fams := scrape(t, m.Handler())
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lambda_traces_running", nil, 2},
		{"lambda_traces_started_total", []string{"engine=bpftrace", "mode=events", "type=BPF"}, 1},
		{"lambda_traces_started_total", []string{"engine=native", "mode=calls", "type=BPF"}, 1},
		{"lambda_traces_started_total", []string{"engine=stap", "mode=calls", "type=STAP"}, 1},
		{"lambda_output_bytes_total", nil, 1000},
		{"lambda_chunks_acknowledged_total", nil, 3},
		{"lambda_submit_duration_seconds_count", []string{"kind=chunk"}, 2},
		{"lambda_submit_duration_seconds_bucket", []string{"kind=chunk", "le=0.005"}, 1},
		{"lambda_submit_duration_seconds_bucket", []string{"kind=chunk", "le=+Inf"}, 2},
		{"lambda_submit_last_ack_timestamp_seconds", nil, 1700000001},
		{"lambda_chunk_bytes_acknowledged_total", nil, 600},
		{"lambda_spool_bytes", nil, 1000 - 600 + 50 - 10},
		{"lambda_submit_retries_total", nil, 2},
		{"lambda_tracer_lost_events_total", nil, 402},
		{"lambda_auth_failures_total", nil, 1},
		{"lambda_http_requests_total", []string{"code=429", "route=/trace/start"}, 1},
		{"lambda_traces_finished_total", []string{"engine=bpftrace", "reason=completed"}, 1},
		{"lambda_traces_finished_total", []string{"engine=native", "reason=killed"}, 1},
		{"lambda_traces_finished_total", []string{"engine=native", "reason=completed"}, 0},
		{"lambda_traces_finished_total", []string{"engine=bpftrace", "reason=something-new"}, 1},
	} {
		if v, ok := value(fams, tc.name, tc.labels...); !ok || v != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	e := messages.TraceEvent{Type: messages.BPF}
	m.TraceStarted(e)
	m.TracerExited(e)
	m.TraceFinished(e, messages.TraceFinished{Reason: "completed"})
	m.OutputRead(e, 1)
	m.ChunkAcked(e, 1, 1)
	m.SpoolBytes(e, 1)
	m.SubmitRetry("chunk")
	m.SubmitAcked("chunk", time.Second, time.Now())
	m.LostEvents(e, 1)
	m.AuthFailed()
	m.HTTPRequest("/", 200)
}

func TestServerServesAndStops(t *testing.T) {
	m := New(Build{})
	s, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "lambda_traces_running 0") {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	if resp, err := http.Post("http://"+s.Addr().String()+"/metrics", "text/plain", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	again, err := Listen(s.Addr().String(), m)
	if err != nil {
		t.Fatalf("address not released after stop: %v", err)
	}
	again.ln.Close()
}

func TestListenRefusesABadAddress(t *testing.T) {
	if _, err := Listen("256.0.0.1:99999", New(Build{})); err == nil || !strings.Contains(err.Error(), "listening for metrics") {
		t.Fatalf("Listen on a bad address: %v", err)
	}
}
