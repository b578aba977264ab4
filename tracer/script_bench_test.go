package tracer

import (
	"fmt"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// scriptBenchSpec is a spec with ten functions.
func scriptBenchSpec(t messages.TraceType) ScriptSpec {
	fs := make([]string, 10)
	for i := range fs {
		fs[i] = fmt.Sprintf("function_%d", i)
	}
	return ScriptSpec{Type: t, Process: "/usr/local/bin/some-server", Functions: fs, Lasting: time.Hour}
}

func BenchmarkScriptBPF(b *testing.B) {
	spec := scriptBenchSpec(messages.BPF)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Script(spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScriptSTAP(b *testing.B) {
	spec := scriptBenchSpec(messages.STAP)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Script(spec); err != nil {
			b.Fatal(err)
		}
	}
}
