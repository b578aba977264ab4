package actors

import "github.com/lambda-endpoint/lambda-endpoint/messages"

// Observer hears the runtime's own events as they happen, for metrics and
// for an embedder that follows its traces. Every event of a trace names
// it (messages.TraceEvent: its path, thread, type, mode and engine). The
// trace actors and their workers call it, so every method must return at
// once (increment a counter, set a gauge, a non-blocking send) and never
// call back into the Runtime. Options.Observer defaults to one that does
// nothing.
type Observer interface {
	// TraceStarted: a tracer was launched (not for traces recovered from
	// an earlier process).
	TraceStarted(e messages.TraceEvent)
	// TracerExited: the tracer of a trace TraceStarted announced has
	// exited (its output may still be delivering).
	TracerExited(e messages.TraceEvent)
	// TraceFinished: the platform acknowledged a trace's finished message,
	// f (reason, code, bytes, chunks, sha256: what Subscribe delivers).
	TraceFinished(e messages.TraceEvent, f messages.TraceFinished)
	// OutputRead: n more bytes of the trace's tracer stdout were read.
	OutputRead(e messages.TraceEvent, n int64)
	// ChunkAcked: the platform acknowledged chunks more chunks of the
	// trace, holding n raw bytes in all.
	ChunkAcked(e messages.TraceEvent, chunks, n int64)
	// SpoolBytes: the trace's bytes read but not yet acknowledged changed
	// by delta (positive when output is spooled, negative when it is
	// acknowledged or a spool is dropped).
	SpoolBytes(e messages.TraceEvent, delta int64)
	// LostEvents: the trace's tracer reported n events it dropped
	// (bpftrace's "Lost N events", the native engine's counter).
	LostEvents(e messages.TraceEvent, n int64)
	// SubmitRetry: a submission to the platform failed and is retried. The
	// runtime does not see the Submitter's retries itself: wire the
	// Submitter's retry hook (platform.Options.OnRetry) to it.
	SubmitRetry(kind string)
}

// NopObserver is an Observer that does nothing: the default.
type NopObserver struct{}

// TraceStarted implements Observer.
func (NopObserver) TraceStarted(messages.TraceEvent) {}

// TracerExited implements Observer.
func (NopObserver) TracerExited(messages.TraceEvent) {}

// TraceFinished implements Observer.
func (NopObserver) TraceFinished(messages.TraceEvent, messages.TraceFinished) {}

// OutputRead implements Observer.
func (NopObserver) OutputRead(messages.TraceEvent, int64) {}

// ChunkAcked implements Observer.
func (NopObserver) ChunkAcked(messages.TraceEvent, int64, int64) {}

// SubmitRetry implements Observer.
func (NopObserver) SubmitRetry(string) {}

// SpoolBytes implements Observer.
func (NopObserver) SpoolBytes(messages.TraceEvent, int64) {}

// LostEvents implements Observer.
func (NopObserver) LostEvents(messages.TraceEvent, int64) {}
