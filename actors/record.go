package actors

import (
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
)

// RunStore records the history of runs. persistence.Store implements it.
// Its failures never stop a trace: they are logged and the trace goes on.
type RunStore = persistence.RunWriter

// A run's record is defined once: runMeta (what it is: the spool's meta,
// the durable copy) plus finalState (how it ended), held by traceRun with
// the counters the workers report. Every shape a boundary needs is derived
// from it here: RunningInfo for the API (info), persistence.Run for the
// history (runRecord), messages.Finish for the platform (platformFinish)
// and TraceFinished for subscribers (finished).

// runMeta is what a run's spool remembers across endpoint restarts: the
// spool's meta file, in JSON.
type runMeta struct {
	Path    string                `json:"path"`
	Thread  int64                 `json:"thread"`
	TraceNo int64                 `json:"traceNo"`
	Info    messages.TemplateInfo `json:"info"`
	Mode    messages.Mode         `json:"mode"`
	// Engine runs the trace: "" for a STAP template (stap) and for spools
	// of earlier versions (bpftrace), else messages.EngineBPFtrace or
	// EngineNative.
	Engine    messages.Engine `json:"engine,omitempty"`
	StartedAt time.Time       `json:"startedAt"`
	Lasting   int64           `json:"lasting"`
	// StartAcked is read from spools of earlier versions only: a run whose
	// first chunk is acknowledged has had its start acknowledged, and a
	// start sent twice before any chunk is an accepted duplicate.
	StartAcked bool        `json:"startAcked,omitempty"`
	Final      *finalState `json:"final,omitempty"`
}

// finalState is how the tracer ended.
type finalState struct {
	Reason     string    `json:"reason"`
	Code       int       `json:"code"`
	Stderr     string    `json:"stderr"`
	EndedAt    time.Time `json:"endedAt"`
	LostEvents int64     `json:"lostEvents,omitempty"`
}

// engine is the engine that runs the trace: what the meta says, bpftrace
// for a BPF run of an earlier version, "" for STAP.
func (m runMeta) engine() messages.Engine {
	if m.Engine == "" && m.Info.TraceType == messages.BPF {
		return messages.EngineBPFtrace
	}
	return m.Engine
}

// event names r in the Observer's events.
func (r *traceRun) event() messages.TraceEvent {
	return r.meta.event()
}

func (m runMeta) event() messages.TraceEvent {
	return messages.TraceEvent{Path: m.Path, Thread: m.Thread, Type: m.Info.TraceType, Mode: m.Mode, Engine: m.engine()}
}

// readBytes is RunningInfo.BytesRead: the stdout read, as the pump
// reported it, but never less than the spool was seen to hold. The sender
// acknowledges from the spool between two of the pump's reports, so that
// bytesSubmitted <= bytesRead holds in every snapshot.
func (r *traceRun) readBytes() int64 { return max(r.bytesRead, r.spooledSeen) }

// info is the RunningInfo of r now.
func (r *traceRun) info() messages.RunningInfo {
	info := messages.RunningInfo{
		TemplateInfo:    r.meta.Info,
		TraceNo:         r.meta.TraceNo,
		Thread:          r.meta.Thread,
		FilePath:        r.meta.Path,
		StartedAt:       r.meta.StartedAt,
		Lasting:         r.meta.Lasting,
		Mode:            r.meta.Mode,
		Engine:          r.meta.engine(),
		State:           messages.StateStarting,
		BytesRead:       r.readBytes(),
		BytesSubmitted:  r.bytesAcked,
		ChunksSubmitted: r.chunksAcked,
		LostEvents:      r.lostEvents,
		Reason:          r.stopReason,
	}
	switch {
	case r.final != nil || r.exit != nil:
		info.State = messages.StateDelivering
	case r.proc != nil:
		info.State = messages.StateRunning
		info.PID = r.proc.PID()
	}
	if r.final != nil {
		info.Reason = r.final.Reason
	}
	return info
}

// alive reports whether r's tracer may still run: it counts against the
// concurrent trace limit.
func (r *traceRun) alive() bool { return r.exit == nil && !r.recovered }

// finished is the TraceFinished of r, delivered with fin.
func (r *traceRun) finished(fin messages.Finish) messages.TraceFinished {
	return messages.TraceFinished{
		Thread: r.meta.Thread, FilePath: r.path(), TraceNo: r.meta.TraceNo,
		Type: r.meta.Info.TraceType, Mode: r.meta.Mode, Engine: r.meta.engine(), Reason: r.final.Reason,
		Code: r.final.Code, Stderr: r.final.Stderr, Bytes: fin.Bytes, Chunks: fin.Chunks, SHA256: fin.SHA256,
		LostEvents: r.final.LostEvents,
		StartedAt:  r.meta.StartedAt, EndedAt: r.final.EndedAt,
	}
}

// runRecord is the history row of r in state.
func (r *traceRun) runRecord(state string) persistence.Run {
	rec := persistence.Run{
		Path: r.meta.Path, TemplateID: r.meta.TraceNo, Type: r.meta.Info.TraceType, Info: r.meta.Info,
		Mode: r.meta.Mode, Engine: r.meta.engine(), Thread: r.meta.Thread, StartedAt: r.meta.StartedAt, Lasting: r.meta.Lasting,
		State: state, Reason: r.stopReason,
		BytesRead:   r.readBytes(),
		ChunksSent:  r.chunksAcked,
		ChunksAcked: r.chunksAcked,
	}
	if f := r.final; f != nil {
		code := f.Code
		rec.ExitCode, rec.Reason = &code, f.Reason
	}
	return rec
}
