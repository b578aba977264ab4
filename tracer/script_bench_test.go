package tracer

import (
	"fmt"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// scriptBenchSpec is a spec with ten functions.
func scriptBenchSpec(t messages.TraceType, mode messages.Mode) ScriptSpec {
	fs := make([]string, 10)
	for i := range fs {
		fs[i] = fmt.Sprintf("function_%d", i)
	}
	return ScriptSpec{Type: t, Process: "/usr/local/bin/some-server", Functions: fs, Lasting: time.Hour, Mode: mode}
}

// benchmarkScript measures Script for spec.
func benchmarkScript(b *testing.B, spec ScriptSpec) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Script(spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScriptBPF(b *testing.B) {
	benchmarkScript(b, scriptBenchSpec(messages.BPF, ""))
}

func BenchmarkScriptSTAP(b *testing.B) {
	benchmarkScript(b, scriptBenchSpec(messages.STAP, ""))
}

// BenchmarkScriptModes measures the scripts of modes calls and summary.
func BenchmarkScriptModes(b *testing.B) {
	for _, typ := range []messages.TraceType{messages.BPF, messages.STAP} {
		for _, mode := range []messages.Mode{messages.ModeCalls, messages.ModeSummary} {
			b.Run(string(typ)+"/"+string(mode), func(b *testing.B) {
				benchmarkScript(b, scriptBenchSpec(typ, mode))
			})
		}
	}
}
