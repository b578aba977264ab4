package actors

import (
	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
	"strings"
)

// endReason is the one place that maps how a tracer ended to the reason the
// platform is told. stop is why the runtime stopped the tracer ("" when it
// ended on its own); it wins, since the exit code of a stopped tracer says
// only that it was stopped. A tracer that ends on its own is completed with
// code 0 and failed otherwise; one the kernel killed for its cgroup's
// memory limit ended with memory-limit.
func endReason(stop string, exit tracer.Exit) string {
	switch {
	case stop != "":
		return stop
	case exit.OOMKilled:
		return messages.ReasonMemoryLimit
	case exit.Code == 0:
		return messages.ReasonCompleted
	default:
		return messages.ReasonFailed
	}
}

// stderrTail is the last n bytes of s, for a log line, cut at a line start
// when one is near.
func stderrTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	t := s[len(s)-n:]
	if i := strings.IndexByte(t, '\n'); i >= 0 && i < n/2 {
		t = t[i+1:]
	}
	return "..." + t
}
