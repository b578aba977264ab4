package messages

import "time"

// TraceType names the tracer a template runs with.
type TraceType string

// The tracers lambda-endpoint knows.
const (
	// BPF runs the template with bpftrace.
	BPF TraceType = "BPF"
	// STAP runs the template with SystemTap.
	STAP TraceType = "STAP"
)

// TemplateInfo is a trace template: what to probe and how to run the tracer.
// It is the "info" object of the API. Environment[i] names the variable whose
// value is Value[i]. Options are extra tracer command-line arguments.
type TemplateInfo struct {
	Process     string    `json:"process"`
	Functions   []string  `json:"functions"`
	Environment []string  `json:"environment"`
	Value       []string  `json:"value"`
	Options     []string  `json:"options"`
	TraceType   TraceType `json:"traceType"`
}

// Template is a stored TemplateInfo with its database id, as listed by
// GET /traces.
type Template struct {
	ID        int64        `json:"traceNo"`
	Info      TemplateInfo `json:"info"`
	CreatedAt time.Time    `json:"createdAt"`
}
