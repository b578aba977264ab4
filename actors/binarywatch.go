package actors

// [binary preflight] The time-of-check-to-time-of-use guard of a trace's
// binary. Kept in this one file (plus the marked lines in registry.go and
// run.go) so that it can be ported to another runtime design as it is.

import (
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/binary"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// watchBinary checks (launch has checked once right before the tracer
// started), right after the tracer was launched and then every
// flush interval until the tracer exits, that the trace's process path
// still names the binary the preflight checked (device, inode, size,
// mtime). When it does not, the trace is stopped with reason
// binary-changed: bpftrace and stap resolve the path when they attach, so a
// file swapped in before that would be probed in place of the checked one.
// Uprobes attach to an inode, so a swap after the attach does not move the
// probes; the trace is stopped all the same, so that the platform knows.
func (r *run) watchBinary() {
	path, id := r.meta.Info.Process, r.binary
	if id == (binary.Identity{}) {
		return // a run made without the preflight
	}
	t := time.NewTicker(r.rt.opts.FlushInterval)
	defer t.Stop()
	for {
		if err := id.Check(path); err != nil {
			r.rt.log.Warn("traced binary changed; stopping the trace", "trace_path", r.path(), "process", path, "err", err)
			r.stop(messages.ReasonBinaryChanged)
			return
		}
		select {
		case <-r.exited:
			return
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}
