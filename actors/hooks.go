package actors

import "time"

// testHooks is the seam through which this package's tests inject faults:
// a panic in an actor's Receive, a stalled registry, a panic in a worker at
// one of its checkpoints. Options.hooks is unexported, so only the tests of
// package actors can set it; in production it is nil and every hook does
// nothing.
type testHooks struct {
	// onReceive is called with every message an actor of the runtime
	// receives, before the actor handles it.
	onReceive func(msg interface{})
	// onCheckpoint is called by worker (a w* name) of the trace at path at
	// its checkpoint: the launcher before it creates the spool, the pump
	// after a read was committed (cut into chunks and its rest staged), the waiter after the
	// exit and before reporting it, the sender after a chunk was accepted
	// and before the spool records it, the finisher after finished was
	// accepted and before the spool is removed.
	onCheckpoint func(worker, path string)
	// launchTimeout, when set, replaces launchTimeout.
	launchTimeout time.Duration
}

// launchDeadline is the launch deadline: launchTimeout, or the tests'.
func (h *testHooks) launchDeadline() time.Duration {
	if h != nil && h.launchTimeout > 0 {
		return h.launchTimeout
	}
	return launchTimeout
}

func (h *testHooks) receive(msg interface{}) {
	if h != nil && h.onReceive != nil {
		h.onReceive(msg)
	}
}

func (h *testHooks) checkpoint(worker, path string) {
	if h != nil && h.onCheckpoint != nil {
		h.onCheckpoint(worker, path)
	}
}
