package spool

import (
	"fmt"
	"time"
)

// SyncPolicy says when the spool calls fsync. Its zero value is
// SyncInterval.
type SyncPolicy int

// The fsync policies. See the package documentation for what each one
// guarantees across a power cut.
const (
	// SyncInterval fsyncs written data and acknowledgements at most every
	// Options.SyncEvery, from a background goroutine, and on Seal, Close
	// and segment rotation. It is the default.
	SyncInterval SyncPolicy = iota
	// SyncAlways fsyncs before every Append and Ack returns.
	SyncAlways
	// SyncNever never fsyncs chunk data or acknowledgements (only the meta
	// file, which is rare and needed to recover at all). For tmpfs and
	// benchmarks.
	SyncNever
)

var syncPolicyNames = [...]string{
	SyncInterval: "interval",
	SyncAlways:   "always",
	SyncNever:    "never",
}

// String returns the policy's configuration name: "interval", "always" or
// "never".
func (p SyncPolicy) String() string {
	if p < 0 || int(p) >= len(syncPolicyNames) {
		return fmt.Sprintf("SyncPolicy(%d)", int(p))
	}
	return syncPolicyNames[p]
}

// ParseSyncPolicy parses a configuration name: "interval", "always" or
// "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for p, name := range syncPolicyNames {
		if s == name {
			return SyncPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("parsing sync policy %q: want interval, always or never", s)
}

// MarshalText implements encoding.TextMarshaler with the configuration name.
func (p SyncPolicy) MarshalText() ([]byte, error) {
	if p < 0 || int(p) >= len(syncPolicyNames) {
		return nil, fmt.Errorf("marshalling sync policy: unknown value %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseSyncPolicy.
func (p *SyncPolicy) UnmarshalText(b []byte) error {
	v, err := ParseSyncPolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Limits and defaults.
const (
	// DefaultSegmentBytes is the segment size target when
	// Options.SegmentBytes is 0.
	DefaultSegmentBytes = 64 << 20
	// MaxSegmentBytes is the largest Options.SegmentBytes accepted.
	MaxSegmentBytes = 1 << 30
	// DefaultSyncEvery is the fsync interval when Options.SyncEvery is 0.
	DefaultSyncEvery = time.Second
	// MaxChunkBytes is the largest chunk Append accepts.
	MaxChunkBytes = 64 << 20
)

// Options tune a Spool. The zero value is usable: no size cap, 64 MiB
// segments, SyncInterval every second. Options are not stored on disk;
// Open may use other options than Create did.
type Options struct {
	// MaxBytes caps the unacknowledged chunk bytes: Append returns ErrFull
	// when a chunk would exceed it. 0 means no cap.
	MaxBytes int64
	// SegmentBytes is the size a segment file grows to before the next
	// chunk starts a new one (a larger chunk gets a segment of its own).
	// Segments whose chunks are all acknowledged are deleted. 0 means
	// DefaultSegmentBytes; at most MaxSegmentBytes.
	SegmentBytes int64
	// Sync is the fsync policy.
	Sync SyncPolicy
	// SyncEvery is the SyncInterval period. 0 means DefaultSyncEvery.
	SyncEvery time.Duration
}

// normalize fills in defaults and checks the ranges.
func (o Options) normalize() (Options, error) {
	if o.MaxBytes < 0 {
		return o, fmt.Errorf("checking options: negative MaxBytes %d", o.MaxBytes)
	}
	switch {
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	case o.SegmentBytes < 0 || o.SegmentBytes > MaxSegmentBytes:
		return o, fmt.Errorf("checking options: SegmentBytes %d outside 1..%d", o.SegmentBytes, MaxSegmentBytes)
	}
	if o.Sync < 0 || int(o.Sync) >= len(syncPolicyNames) {
		return o, fmt.Errorf("checking options: unknown sync policy %d", int(o.Sync))
	}
	switch {
	case o.SyncEvery == 0:
		o.SyncEvery = DefaultSyncEvery
	case o.SyncEvery < 0:
		return o, fmt.Errorf("checking options: negative SyncEvery %s", o.SyncEvery)
	}
	return o, nil
}
