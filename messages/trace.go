package messages

import "time"

// Mode selects what the generated tracer script reports.
type Mode string

// Trace modes, chosen per start request. ModeEvents is the seed's behaviour
// and the default.
const (
	// ModeEvents prints one JSON line at every function entry and return.
	ModeEvents Mode = "events"
	// ModeCalls prints one JSON line per completed call: entry time,
	// duration, return value.
	ModeCalls Mode = "calls"
	// ModeSummary prints nothing per event: per function a call count and a
	// latency histogram, printed as JSON lines when the trace ends.
	ModeSummary Mode = "summary"
)

// Engine is what runs a BPF trace.
type Engine string

// Engines of BPF traces, chosen per start request (the config's
// lambda.engine by default). STAP templates always run stap.
const (
	// EngineBPFtrace runs bpftrace (lambda.bpf-path) with the generated
	// script: the seed's behaviour and the default.
	EngineBPFtrace Engine = "bpftrace"
	// EngineNative loads the probes in the endpoint itself (package
	// tracer/native): the same output, at a fraction of the cost to the
	// traced program, with exact lost-event counts and Go returns.
	EngineNative Engine = "native"
)

// Reasons a trace ends, reported in the finished message and in RunningInfo.
const (
	ReasonCompleted     = "completed"       // the tracer exited by itself with code 0 (lasting reached)
	ReasonFailed        = "failed"          // the tracer exited by itself with another code
	ReasonKilled        = "killed"          // POST /trace/kill
	ReasonTimedOut      = "timed-out"       // still alive after lasting plus grace: killed by the watchdog
	ReasonFailedToStart = "failed-to-start" // the tracer could not be launched
	ReasonShutdown      = "shutdown"        // the endpoint was stopping
	ReasonInterrupted   = "interrupted"     // the endpoint died while the trace ran (found at restart)
	ReasonSpoolFull     = "spool-full"      // the spool size cap was reached
	ReasonMemoryLimit   = "memory-limit"    // the kernel killed the tracer at its memory.max (tracer-memory-max)
	ReasonSpoolError    = "spool-error"     // the spool could not be written (disk error)
	// ReasonBinaryChanged: the traced binary's path named another file (or
	// a modified one) while the trace ran; see package binary.
	ReasonBinaryChanged = "binary-changed"
)

// Trace states shown in RunningInfo.State.
const (
	StateStarting   = "starting"   // accepted, tracer not launched yet
	StateRunning    = "running"    // tracer running
	StateDelivering = "delivering" // tracer gone, output still being submitted
)

// StartTrace asks the registry to start Template for Lasting. The reply is
// *StartTraceReply.
type StartTrace struct {
	Template Template
	Lasting  time.Duration
	Mode     Mode
	// Engine is "" (the runtime's default), EngineBPFtrace or EngineNative;
	// only BPF templates may run natively.
	Engine Engine
}

// StartTraceReply answers StartTrace. Err is nil on success; otherwise it
// wraps one of the runtime's sentinel errors.
type StartTraceReply struct {
	Thread   int64
	FilePath string
	Err      error
}

// GetRunning asks for the RunningInfo of the trace identified by Path. The
// reply is *GetRunningReply.
type GetRunning struct {
	Path string
}

// GetRunningReply answers GetRunning; Found is false for an unknown path.
type GetRunningReply struct {
	Info  RunningInfo
	Found bool
}

// ListRunning asks for every running trace. The reply is *ListRunningReply.
type ListRunning struct{}

// ListRunningReply answers ListRunning, ordered by thread.
type ListRunningReply struct {
	Traces []RunningInfo
}

// KillTrace asks to kill the trace identified by Path. The reply is
// *KillTraceReply.
type KillTrace struct {
	Path string
}

// KillTraceReply answers KillTrace; Found is false when Path was not running.
type KillTraceReply struct {
	Found bool
}

// RunningInfo describes one trace the endpoint is running or still
// delivering. It is the TemplateInfo plus the trace's runtime state.
type RunningInfo struct {
	TemplateInfo
	TraceNo   int64     `json:"traceNo"`
	Thread    int64     `json:"thread"`
	FilePath  string    `json:"filePath"`
	StartedAt time.Time `json:"startedAt"`
	Lasting   int64     `json:"lasting"`
	Mode      Mode      `json:"mode"`
	Engine    Engine    `json:"engine,omitempty"`
	State     string    `json:"state"`
	PID       int       `json:"pid,omitempty"`
	// BytesRead is the raw tracer stdout read so far (bpftrace's own
	// notices included). BytesSubmitted is what of it the platform
	// acknowledged, in ChunksSubmitted chunks. Both only grow, and
	// BytesSubmitted <= BytesRead in every snapshot.
	BytesRead       int64  `json:"bytesRead"`
	BytesSubmitted  int64  `json:"bytesSubmitted"`
	ChunksSubmitted int64  `json:"chunksSubmitted"`
	LostEvents      int64  `json:"lostEvents"`
	Reason          string `json:"reason,omitempty"`
}

// TraceFinished reports that a trace has ended and everything it owed the
// platform has been delivered (or given up at shutdown). The trace actor
// sends it to the registry, which forwards it to subscribers.
type TraceFinished struct {
	Thread   int64
	FilePath string
	TraceNo  int64
	Type     TraceType
	Mode     Mode
	Engine   Engine // "" for STAP
	Reason   string
	Code     int
	Stderr   string
	// Bytes, Chunks and SHA256 are what the finished message told the
	// platform: the raw output bytes in all chunks, their number, and the
	// lower-case hex SHA-256 of those bytes in order.
	Bytes      int64
	Chunks     int64
	SHA256     string
	LostEvents int64
	StartedAt  time.Time
	EndedAt    time.Time
}

// TraceEvent names the trace an event of the runtime (actors.Observer) is
// about.
type TraceEvent struct {
	// Path is the trace's filePath, the name the API knows it by.
	Path   string
	Thread int64
	Type   TraceType
	Mode   Mode
	// Engine is EngineBPFtrace or EngineNative for a BPF trace, "" for a
	// STAP one (SystemTap runs it).
	Engine Engine
}

// Finish is the finished message of a trace as a Submitter delivers it:
// why the trace ended and a summary of what was submitted.
type Finish struct {
	// Stderr is the tracer's standard error output.
	Stderr string
	// Code is the tracer's exit code; 128+N for a tracer killed by signal N.
	Code int
	// Reason says why the trace ended: one of the Reason* values
	// (completed, failed, killed, timed-out, failed-to-start, shutdown,
	// interrupted, spool-full, spool-error, ...).
	Reason string
	// Chunks is how many chunks were sent (extension field).
	Chunks int64
	// Bytes is how many raw output bytes the chunks held (extension field).
	Bytes int64
	// SHA256 is the lower-case hex SHA-256 of the concatenated raw bytes of
	// all chunks (extension field).
	SHA256 string
	// LostEvents is how many events the tracer reported it dropped
	// (bpftrace's "Lost N events"): what the platform did not get.
	LostEvents int64
}
