package tests

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// scrapeMetrics reads the endpoint's /metrics and parses the exposition.
func scrapeMetrics(t *testing.T, e *endpoint) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.MetricsURL)
	if err != nil {
		t.Fatalf("scraping %s: %v", e.MetricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: status %d", e.MetricsURL, resp.StatusCode)
	}
	return testsupport.ParseMetrics(t, resp.Body)
}

var metricValue = testsupport.MetricValue

// TestMetrics scrapes the real endpoint: every family of the contract is
// there at start-up at 0, and a refused request, a trace, its output and
// its chunks move the counters by exactly what happened.
func TestMetrics(t *testing.T) {
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), ChunkSize: 100})
	fams := scrapeMetrics(t, e)
	for _, tc := range []struct {
		name   string
		labels []string
	}{
		{"lambda_traces_running", nil},
		{"lambda_traces_started_total", []string{"engine=bpftrace", "mode=events", "type=BPF"}},
		{"lambda_traces_started_total", []string{"engine=native", "mode=events", "type=BPF"}},
		{"lambda_traces_finished_total", []string{"engine=bpftrace", "reason=completed"}},
		{"lambda_traces_finished_total", []string{"engine=stap", "reason=killed"}},
		{"lambda_submit_duration_seconds_count", []string{"kind=chunk"}},
		{"lambda_submit_last_ack_timestamp_seconds", nil},
		{"lambda_output_bytes_total", nil},
		{"lambda_chunks_acknowledged_total", nil},
		{"lambda_submit_retries_total", nil},
		{"lambda_spool_bytes", nil},
		{"lambda_tracer_lost_events_total", nil},
		{"lambda_auth_failures_total", nil},
		{"lambda_http_requests_total", []string{"code=200", "route=/trace/start"}},
	} {
		if v, ok := metricValue(fams, tc.name, tc.labels...); !ok || v != 0 {
			t.Errorf("at start-up %s%v = %v (present: %v), want 0", tc.name, tc.labels, v, ok)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}

	if st, _, _ := e.do("GET", "/heartbeat", "", map[string]string{"Authorization": "Bearer x"}); st != http.StatusUnauthorized {
		t.Fatalf("heartbeat with a bad header: %d, want 401", st)
	}
	// 40 short JSON lines, cut into chunks of at most 100 bytes.
	began := time.Now()
	s := e.start("BPF", e.putTemplate(fakeTemplate("lines 40 1ms")), 60)
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if rec.Finished.Reason != "completed" {
		t.Fatalf("trace ended %+v", rec.Finished)
	}
	// The platform acknowledged the finished message: the endpoint counts
	// it right after; wait for that, then every figure must be exact.
	eventually(t, 10*time.Second, "the finished trace counted", func() bool {
		v, _ := metricValue(scrapeMetrics(t, e), "lambda_traces_finished_total", "engine=bpftrace", "reason=completed")
		return v == 1
	})
	fams = scrapeMetrics(t, e)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lambda_traces_running", nil, 0},
		{"lambda_traces_started_total", []string{"engine=bpftrace", "mode=events", "type=BPF"}, 1},
		{"lambda_output_bytes_total", nil, float64(rec.Bytes)},
		// Every message of the trace: start, its chunks, finished.
		{"lambda_submit_duration_seconds_count", []string{"kind=start"}, 1},
		{"lambda_submit_duration_seconds_count", []string{"kind=chunk"}, float64(rec.ChunkCount)},
		{"lambda_submit_duration_seconds_count", []string{"kind=finished"}, 1},
		{"lambda_chunks_acknowledged_total", nil, float64(rec.ChunkCount)},
		{"lambda_spool_bytes", nil, 0},
		{"lambda_auth_failures_total", nil, 1},
		{"lambda_http_requests_total", []string{"code=401", "route=/heartbeat"}, 1},
		{"lambda_http_requests_total", []string{"code=200", "route=/trace/start"}, 1},
		{"lambda_http_requests_total", []string{"code=201", "route=/trace"}, 1},
	} {
		if v, ok := metricValue(fams, tc.name, tc.labels...); !ok || v != tc.want {
			t.Errorf("after one trace %s%v = %v (present: %v), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
	if v, _ := metricValue(fams, "lambda_submit_last_ack_timestamp_seconds"); v < float64(began.Unix()) {
		t.Errorf("lambda_submit_last_ack_timestamp_seconds = %v, before the trace began (%d)", v, began.Unix())
	}
	build := fams["lambda_build_info"]
	if build == nil || len(build.GetMetric()) != 1 || build.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("lambda_build_info: %v", build)
	}
	if rec.Bytes == 0 || rec.ChunkCount < 2 {
		t.Errorf("the trace delivered %d bytes in %d chunks: too little to check the counters", rec.Bytes, rec.ChunkCount)
	}
	t.Logf("trace: %d bytes in %d chunks", rec.Bytes, rec.ChunkCount)
}
