package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestVerifySeedExample(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	if err := v.Verify(context.Background(), seedHeader); err != nil {
		t.Fatalf("seed example: %v", err)
	}
	if n := v.hashes.Load(); n != 1 {
		t.Errorf("hashes = %d, want 1", n)
	}
}

func TestVerify(t *testing.T) {
	otherLen := "4633d686-f75d-4d1f-8415-02ce37d9e5f" // one character short
	seedTail := strings.TrimPrefix(seedHeader, seedUUID)
	withSeedParams := func(old, new string) string {
		return strings.Replace(seedHeader, old, new, 1)
	}
	tests := []struct {
		name    string
		header  string
		errText string // substring of the error; "" means accepted
		hashes  int64  // argon2 computations expected
	}{
		{"seed example", seedHeader, "", 1},
		{"padded base64", seedUUID + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw==$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM=", "", 1},
		{"argon2id", makeHeader(t, seedUUID, seedSecret, Params{Argon2id, 1024, 2, 2}, salt(7, 16), 32), "", 1},
		{"argon2i 64-byte hash", makeHeader(t, seedUUID, seedSecret, cheap, salt(7, 64), 64), "", 1},
		{"argon2i at every limit", makeHeader(t, seedUUID, seedSecret, Params{Argon2i, 16 * 1024, 1, 4}, salt(7, 16), 16), "", 1},

		{"wrong secret", makeHeader(t, seedUUID, "abc123457", cheap, salt(1, 16), 32), "hash mismatch", 1},
		{"argon2id hash labelled argon2i", strings.Replace(makeHeader(t, seedUUID, seedSecret, Params{Argon2id, 64, 1, 1}, salt(1, 16), 32), "argon2id", "argon2i", 1), "hash mismatch", 1},
		{"tampered hash", withSeedParams("FUjx", "FUjy"), "hash mismatch", 1},
		{"empty", "", "missing Authorization header", 0},
		{"very long", seedHeader + strings.Repeat("A", MaxHeaderLength), "longer than 1024 bytes", 0},
		{"no $argon2", seedUUID, "malformed header", 0},
		{"scheme prefix", "Bearer " + seedHeader, "unknown endpoint", 0},
		{"wrong uuid", "5633d686-f75d-4d1f-8415-02ce37d9e5f8" + seedTail, "unknown endpoint", 0},
		{"shorter uuid", otherLen + seedTail, "unknown endpoint", 0},
		{"longer uuid", seedUUID + "0" + seedTail, "unknown endpoint", 0},
		{"upper-case uuid", strings.ToUpper(seedUUID) + seedTail, "unknown endpoint", 0},
		{"no uuid", seedTail, "unknown endpoint", 0},
		{"argon2d", withSeedParams("$argon2i$", "$argon2d$"), "unsupported variant", 0},
		{"v=16", withSeedParams("v=19", "v=16"), "unsupported version", 0},
		{"m over limit (4 GiB)", withSeedParams("m=4096", "m=4194304"), "cost over limit: m=4194304", 0},
		{"m max uint32", withSeedParams("m=4096", "m=4294967295"), "cost over limit", 0},
		{"t over limit", withSeedParams("t=3", "t=11"), "cost over limit: t=11", 0},
		{"t max uint32", withSeedParams("t=3", "t=4294967295"), "cost over limit", 0},
		{"p over limit", withSeedParams("p=1", "p=5"), "cost over limit: p=5", 0},
		{"p over uint8", withSeedParams("p=1", "p=256"), "cost over limit: p=256", 0},
		{"m zero", withSeedParams("m=4096", "m=0"), "at least 1", 0},
		{"bad base64", withSeedParams("lxQKK/", "lxQKK!"), "salt is not base64", 0},
		{"truncated in hash", seedHeader[:len(seedHeader)-31], "hash is 9 bytes", 0},
		{"truncated to a valid 24-byte hash", seedHeader[:len(seedHeader)-11], "hash mismatch", 1},
		{"truncated to invalid base64", seedHeader[:len(seedHeader)-30], "hash is not base64", 0},
		{"truncated in salt", seedHeader[:len(seedUUID)+37], "malformed hash", 0},
		{"truncated in params", seedHeader[:len(seedUUID)+20], "malformed hash", 0},
		{"truncated marker", seedHeader[:len(seedUUID)+5], "malformed header", 0},
		{"trailing space", seedHeader + " ", "hash is not base64", 0},
		{"second header appended", seedHeader + "," + seedHeader, "malformed hash", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newTestVerifier(Limits{CacheSize: -1})
			err := v.Verify(context.Background(), tt.header)
			if tt.errText == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			} else {
				if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Verify error = %v, want ErrUnauthorized containing %q", err, tt.errText)
				}
				if errors.Is(err, ErrBusy) {
					t.Errorf("refusal %v also wraps ErrBusy", err)
				}
			}
			if n := v.hashes.Load(); n != tt.hashes {
				t.Errorf("argon2 computations = %d, want %d", n, tt.hashes)
			}
		})
	}
}

func TestVerifyDoesNotEchoHeader(t *testing.T) {
	v, _ := newTestVerifier(Limits{})
	for _, h := range []string{
		"secret-looking-token",
		seedUUID + "$argon2i$v=19$m=4096,t=3,p=1$lxQKK/JGRLqc01yCPpJvSw$SECRETSECRETSECRETSECRETSECRETSECRET",
	} {
		err := v.Verify(context.Background(), h)
		if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "token") {
			t.Errorf("Verify(%q) error = %v: want a refusal that does not repeat the header", h, err)
		}
	}
}

func TestVerifierEmptyUUIDMatchesNothing(t *testing.T) {
	v := NewVerifier("", seedSecret, Limits{})
	h := strings.TrimPrefix(seedHeader, seedUUID)
	if err := v.Verify(context.Background(), h); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Verify with empty configured uuid = %v, want ErrUnauthorized", err)
	}
	if n := v.hashes.Load(); n != 0 {
		t.Errorf("hashes = %d, want 0", n)
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	d := DefaultLimits()
	if d.MaxMemoryKiB != 16384 || d.MaxIterations != 6 || d.MaxParallelism != 4 ||
		d.MaxConcurrent < 1 || d.MaxWait != time.Second || d.MaxQueue != 64 ||
		d.CacheSize != 1024 || d.CacheTTL.Minutes() != 10 {
		t.Fatalf("DefaultLimits = %+v", d)
	}
	if got := (Limits{}).withDefaults(); got != d {
		t.Errorf("zero Limits with defaults = %+v, want %+v", got, d)
	}
	custom := Limits{MaxMemoryKiB: 1, MaxIterations: 2, MaxParallelism: 3, MaxConcurrent: 4, MaxWait: 5, MaxQueue: 6, CacheSize: -1, CacheTTL: -1}
	if got := custom.withDefaults(); got != custom {
		t.Errorf("set Limits with defaults = %+v, want unchanged %+v", got, custom)
	}
	if got := (Limits{MaxConcurrent: -3}).withDefaults().MaxConcurrent; got != d.MaxConcurrent {
		t.Errorf("negative MaxConcurrent became %d, want default %d", got, d.MaxConcurrent)
	}
}

func TestVerifyCustomLimits(t *testing.T) {
	v, _ := newTestVerifier(Limits{MaxMemoryKiB: 1024, MaxIterations: 2, MaxParallelism: 1})
	for _, h := range []string{
		seedHeader, // m=4096, t=3
		makeHeader(t, seedUUID, seedSecret, Params{Argon2i, 1024, 3, 1}, salt(1, 16), 32),
		makeHeader(t, seedUUID, seedSecret, Params{Argon2i, 1024, 1, 2}, salt(1, 16), 32),
	} {
		if err := v.Verify(context.Background(), h); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "cost over limit") {
			t.Errorf("Verify = %v, want cost over limit", err)
		}
	}
	if err := v.Verify(context.Background(), makeHeader(t, seedUUID, seedSecret, Params{Argon2i, 1024, 2, 1}, salt(1, 16), 32)); err != nil {
		t.Errorf("Verify at the limits: %v", err)
	}
	if n := v.hashes.Load(); n != 1 {
		t.Errorf("hashes = %d, want 1", n)
	}
}

// TestVerifyCostFloor checks the real floor (the seed's cost): a weaker hash
// is refused before hashing, the seed's cost itself verifies.
func TestVerifyCostFloor(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		errText string
	}{
		{"seed cost", Params{Argon2i, 4096, 3, 1}, ""},
		{"m=8,t=1 (far weaker)", Params{Argon2i, 8, 1, 1}, "cost under floor: m=8 below 4096"},
		{"m one under", Params{Argon2id, 4095, 3, 1}, "cost under floor: m=4095"},
		{"t one under", Params{Argon2i, 4096, 2, 1}, "cost under floor: t=2 below 3"},
		{"stronger m, weaker t", Params{Argon2i, 8192, 1, 1}, "cost under floor: t=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(seedUUID, seedSecret, Limits{CacheSize: -1})
			err := v.Verify(context.Background(), makeHeader(t, seedUUID, seedSecret, tt.p, salt(3, 16), 32))
			if tt.errText == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("Verify = %v, want ErrUnauthorized containing %q", err, tt.errText)
			}
			if n := v.hashes.Load(); n != 0 {
				t.Errorf("hashes = %d, want 0 (refused before hashing)", n)
			}
		})
	}
}

// TestVerifyMessagesHaveOnePrefix checks that no refusal repeats a prefix
// (once "unauthorized: unauthorized: ...").
func TestVerifyMessagesHaveOnePrefix(t *testing.T) {
	v, _ := newTestVerifier(Limits{CacheSize: -1})
	for _, h := range []string{"", "Bearer x", seedUUID, "x" + seedHeader, strings.Replace(seedHeader, "v=19", "v=16", 1),
		strings.Replace(seedHeader, "m=4096", "m=9999999", 1), seedHeader[:len(seedHeader)-3] + "AAA", seedHeader + "!"} {
		err := v.Verify(context.Background(), h)
		if err == nil {
			t.Fatalf("Verify(%q) accepted", h)
		}
		msg := err.Error()
		if strings.Count(msg, "unauthorized") != 1 || strings.Count(msg, "malformed") > 1 {
			t.Errorf("Verify(%q) = %q: a prefix repeats", h, msg)
		}
	}
}

// TestArgon2MemoryReleasedWhenIdle: the argon2 memory a verification used
// is kept for the next one, and dropped once no hash ran for the idle
// period, so an endpoint that verified a header does not hold it forever.
func TestArgon2MemoryReleasedWhenIdle(t *testing.T) {
	tests := []struct {
		name string
		idle time.Duration
		kept bool // after the verifications, eventually
	}{
		{name: "kept while hashes keep coming", idle: time.Hour, kept: true},
		{name: "released when idle", idle: time.Millisecond, kept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(seedUUID, seedSecret, Limits{CacheSize: -1})
			v.releaseIdle = tt.idle
			for range 2 {
				if err := v.Verify(context.Background(), seedHeader); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for !tt.kept && len(v.bufs) > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := len(v.bufs) > 0; got != tt.kept {
				t.Errorf("argon2 memory kept: %v, want %v", got, tt.kept)
			}
			if tt.kept {
				v.relMu.Lock()
				v.release.Stop()
				v.relMu.Unlock()
			}
		})
	}
}

// TestArgon2ReleaseRacesFlood attacks the release of argon2 memory with a
// caller holding platform credentials: fresh valid headers and headers of a
// wrong secret, concurrently, while the memory is released after every
// hash (an idle period of a microsecond races every verification). Each
// header still gets its own verdict from its own hash.
func TestArgon2ReleaseRacesFlood(t *testing.T) {
	const maxConcurrent, callers = 2, 8
	v := NewVerifier(seedUUID, seedSecret, Limits{CacheSize: -1, MaxConcurrent: maxConcurrent, MaxWait: time.Minute, MaxQueue: 2 * callers})
	v.releaseIdle = time.Microsecond
	seed := Params{Variant: Argon2i, Memory: MinMemoryKiB, Iterations: MinIterations, Parallelism: 1}
	type probe struct {
		header string
		good   bool
	}
	var probes []probe
	for i := range 2 * callers {
		secret := seedSecret
		if i%2 == 1 {
			secret = "not the secret"
		}
		probes = append(probes, probe{makeHeader(t, seedUUID, secret, seed, salt(byte(i+1), 16), 32), i%2 == 0})
	}
	errs := make(chan error, len(probes))
	for _, pr := range probes {
		go func() {
			err := v.Verify(context.Background(), pr.header)
			switch {
			case pr.good && err != nil:
				errs <- fmt.Errorf("valid header refused: %w", err)
			case !pr.good && !errors.Is(err, ErrUnauthorized):
				errs <- fmt.Errorf("wrong secret: %v, want ErrUnauthorized", err)
			default:
				errs <- nil
			}
		}()
	}
	for range probes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := v.hashes.Load(); got != int64(len(probes)) {
		t.Errorf("%d hashes for %d distinct headers", got, len(probes))
	}
}
