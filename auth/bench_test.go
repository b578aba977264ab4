package auth

import (
	"context"
	"testing"
)

func BenchmarkVerifyCached(b *testing.B) {
	v := NewVerifier(seedUUID, seedSecret, Limits{})
	ctx := context.Background()
	if err := v.Verify(ctx, seedHeader); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ctx, seedHeader); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached measures a full argon2i m=4096,t=3,p=1
// verification, the cost an unknown header imposes.
func BenchmarkVerifyUncached(b *testing.B) {
	v := NewVerifier(seedUUID, seedSecret, Limits{CacheSize: -1})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ctx, seedHeader); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRefusedOverLimit measures refusing a 4 GiB header.
func BenchmarkVerifyRefusedOverLimit(b *testing.B) {
	v := NewVerifier(seedUUID, seedSecret, Limits{})
	h := makeHeaderUnchecked(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ctx, h); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkHeader(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Header(seedUUID, seedSecret); err != nil {
			b.Fatal(err)
		}
	}
}
