package platform

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// TestLargeTrace streams a large trace through a receiver that keeps the
// data. The size is 16 MiB, or PLATFORM_LARGE_TRACE_MB (e.g. 256) when set.
func TestLargeTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the large trace in -short mode")
	}
	mb := 16
	if v := os.Getenv("PLATFORM_LARGE_TRACE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PLATFORM_LARGE_TRACE_MB=%q: want a positive integer", v)
		}
		mb = n
	}
	p := platformtest.New(t, testUUID, testSecret)
	c, _ := newTestClient(t, p, Options{})
	ctx := testCtx(t)
	const path = "/tmp/large.trace"
	if err := c.Start(ctx, path); err != nil {
		t.Fatal(err)
	}
	data := benchData()
	h := sha256.New()
	total := int64(mb) << 20
	var no, sent int64
	for sent < total {
		chunk := data[:min(int64(len(data)), total-sent)]
		chunk[0] = byte(no) // make chunks differ
		if err := c.Chunk(ctx, path, no, chunk); err != nil {
			t.Fatal(err)
		}
		h.Write(chunk)
		sent += int64(len(chunk))
		no++
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := c.Finished(ctx, path, Finish{Reason: "completed", Chunks: no, Bytes: sent, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	p.AssertNoViolations(t)
	r := p.Trace(path)
	if r.Bytes != total || int64(len(r.Data)) != total || r.SHA256 != sum || r.ChunkCount != no {
		t.Fatalf("record: %d bytes (data %d), %d chunks, sha %s; want %d, %d, %s", r.Bytes, len(r.Data), r.ChunkCount, r.SHA256, total, no, sum)
	}
	if !bytes.Equal(r.Chunks[no-1], r.Data[int64(len(r.Data))-int64(len(r.Chunks[no-1])):]) {
		t.Fatal("last chunk is not the tail of Data")
	}
}
