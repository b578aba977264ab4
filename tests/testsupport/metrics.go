package testsupport

import (
	"io"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// ParseMetrics parses a Prometheus text exposition, failing t on an error.
func ParseMetrics(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// MetricValue is the value of family name's counter or gauge series whose
// labels are exactly labels ("k=v", in the exposition's order: sorted by
// name), and whether that series exists. A histogram's series are named as
// in the text exposition: name_count, name_sum, and name_bucket with a
// last label "le=BOUND" (e.g. "le=0.5", "le=+Inf").
func MetricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return histogramValue(fams, name, labels)
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetName()+"="+l.GetValue() != labels[i] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// histogramValue is MetricValue of a histogram's _count, _sum or _bucket
// series.
func histogramValue(fams map[string]*dto.MetricFamily, name string, labels []string) (float64, bool) {
	for _, suffix := range []string{"_count", "_sum", "_bucket"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := fams[base]
		if !ok {
			return 0, false
		}
		le := ""
		if suffix == "_bucket" {
			if len(labels) == 0 || !strings.HasPrefix(labels[len(labels)-1], "le=") {
				return 0, false
			}
			le, labels = strings.TrimPrefix(labels[len(labels)-1], "le="), labels[:len(labels)-1]
		}
	next:
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h == nil || len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetName()+"="+l.GetValue() != labels[i] {
					continue next
				}
			}
			switch suffix {
			case "_count":
				return float64(h.GetSampleCount()), true
			case "_sum":
				return h.GetSampleSum(), true
			}
			if le == "+Inf" {
				return float64(h.GetSampleCount()), true
			}
			for _, b := range h.GetBucket() {
				if strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64) == le {
					return float64(b.GetCumulativeCount()), true
				}
			}
			return 0, false
		}
		return 0, false
	}
	return 0, false
}
