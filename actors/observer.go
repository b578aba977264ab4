package actors

import "github.com/lambda-endpoint/lambda-endpoint/messages"

// Observer hears the runtime's own events as they happen, for metrics. The
// trace actors call it from their mailbox, so every method must return at
// once (increment a counter, set a gauge) and never call back into the
// Runtime. Options.Observer defaults to one that does nothing.
type Observer interface {
	// TraceStarted: a tracer was launched (not for traces recovered from
	// an earlier process).
	TraceStarted(t messages.TraceType, m messages.Mode)
	// TracerExited: the tracer of a trace TraceStarted announced has
	// exited (its output may still be delivering).
	TracerExited(t messages.TraceType, m messages.Mode)
	// TraceFinished: the platform acknowledged a trace's finished message.
	TraceFinished(t messages.TraceType, m messages.Mode, reason string)
	// OutputRead: n more bytes of tracer stdout were read.
	OutputRead(n int64)
	// ChunkAcked: the platform acknowledged a chunk of n raw bytes.
	ChunkAcked(n int64)
	// SubmitRetry: a submission to the platform failed and is retried. The
	// runtime does not see the Submitter's retries itself: wire the
	// Submitter's retry hook (platform.Options.OnRetry) to it.
	SubmitRetry(kind string)
	// SpoolBytes: the bytes read but not yet acknowledged changed by delta
	// (positive when output is spooled, negative when it is acknowledged
	// or a spool is dropped).
	SpoolBytes(delta int64)
	// LostEvents: a tracer reported n events it dropped (bpftrace's "Lost
	// N events").
	LostEvents(n int64)
}

// NopObserver is an Observer that does nothing: the default.
type NopObserver struct{}

// TraceStarted implements Observer.
func (NopObserver) TraceStarted(messages.TraceType, messages.Mode) {}

// TracerExited implements Observer.
func (NopObserver) TracerExited(messages.TraceType, messages.Mode) {}

// TraceFinished implements Observer.
func (NopObserver) TraceFinished(messages.TraceType, messages.Mode, string) {}

// OutputRead implements Observer.
func (NopObserver) OutputRead(int64) {}

// ChunkAcked implements Observer.
func (NopObserver) ChunkAcked(int64) {}

// SubmitRetry implements Observer.
func (NopObserver) SubmitRetry(string) {}

// SpoolBytes implements Observer.
func (NopObserver) SpoolBytes(int64) {}

// LostEvents implements Observer.
func (NopObserver) LostEvents(int64) {}
