package platformtest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// FinishedMsg is a trace's finished message as received; the fields match
// the wire JSON. Extension fields the sender left out are zero.
type FinishedMsg struct {
	Trace  string `json:"trace"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Chunks int64  `json:"chunks,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// LostEvents is the events the tracer reported it dropped.
	LostEvents int64 `json:"lostEvents,omitempty"`
}

// TraceRecord is a snapshot of what one trace delivered. Its byte slices
// share the receiver's storage: treat them as read-only.
type TraceRecord struct {
	// Path is the trace's path (the "trace" field).
	Path string
	// Started is true once the start message arrived.
	Started bool
	// Chunks holds each accepted chunk's raw bytes, indexed by "no"; nil
	// with WithDiscardData.
	Chunks [][]byte
	// Data is the concatenation of Chunks; nil with WithDiscardData.
	Data []byte
	// ChunkCount is how many distinct chunks were accepted.
	ChunkCount int64
	// Bytes is how many raw bytes the accepted chunks held.
	Bytes int64
	// SHA256 is the lower-case hex SHA-256 of the accepted bytes in order.
	SHA256 string
	// Finished is the finished message, nil until it arrives.
	Finished *FinishedMsg
	// Duplicates counts exact repeats of an already accepted message.
	Duplicates int
	// Requests counts the recorded requests for this trace (duplicates and
	// out-of-order ones included, injected failures not).
	Requests int
}

// traceState is the receiver's mutable record of one trace, guarded by
// Platform.mu.
type traceState struct {
	path       string
	started    bool
	data       []byte   // concatenated chunks; nil when discarding
	ends       []int    // end offset of each chunk in data
	sums       []uint64 // fingerprint of each chunk, only when discarding
	chunkCount int64
	bytes      int64
	hash       hash.Hash
	finished   *FinishedMsg
	duplicates int
	requests   int
}

func newTraceState(path string) *traceState {
	return &traceState{path: path, hash: sha256.New()}
}

// chunk returns accepted chunk i; only when keeping data.
func (t *traceState) chunk(i int64) []byte {
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	end := t.ends[i]
	return t.data[start:end:end]
}

// snapshot copies the state into a TraceRecord; byte slices are shared.
func (t *traceState) snapshot(discard bool) TraceRecord {
	r := TraceRecord{
		Path:       t.path,
		Started:    t.started,
		ChunkCount: t.chunkCount,
		Bytes:      t.bytes,
		SHA256:     hex.EncodeToString(t.hash.Sum(nil)),
		Duplicates: t.duplicates,
		Requests:   t.requests,
	}
	if t.finished != nil {
		f := *t.finished
		r.Finished = &f
	}
	if !discard {
		n := len(t.data)
		r.Data = t.data[:n:n]
		r.Chunks = make([][]byte, len(t.ends))
		for i := range t.ends {
			r.Chunks[i] = t.chunk(int64(i))
		}
	}
	return r
}
