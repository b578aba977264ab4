package platform

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

const benchChunk = 51200 // the default submit-chunk-size

func benchData() []byte {
	line := []byte(`{"probe":"xmalloc","uid":0,"pid":1234,"tid":1234,"cpu":1,"time":123456789,"process":"bash"}` + "\n")
	return bytes.Repeat(line, benchChunk/len(line)+1)[:benchChunk]
}

func BenchmarkAppendChunkBody(b *testing.B) {
	data := benchData()
	buf := make([]byte, 0, ChunkBodyLen("/tmp/4633d686-f75d-4d1f-8415-02ce37d9e5f8.trace", len(data)))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = AppendChunkBody(buf[:0], "/tmp/4633d686-f75d-4d1f-8415-02ce37d9e5f8.trace", int64(i), data)
	}
}

// BenchmarkClientChunk measures raw tracer bytes per second through the
// whole path: encoding, HTTP on loopback, and the receiver's parsing,
// base64 decoding and hashing (WithDiscardData), for one trace sending
// sequentially and for several traces at once.
func BenchmarkClientChunk(b *testing.B) {
	for _, traces := range []int{1, 4} {
		b.Run(fmt.Sprintf("traces=%d", traces), func(b *testing.B) {
			p := platformtest.New(b, testUUID, testSecret, platformtest.WithDiscardData())
			c, err := New(p.URL(), testHeader(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			ctx := context.Background()
			data := benchData()
			for t := range traces {
				if err := c.Start(ctx, fmt.Sprintf("/tmp/bench%d.trace", t)); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64 // hands out the b.N chunks
			var nos [8]int64
			var wg sync.WaitGroup
			for t := range traces {
				wg.Add(1)
				go func() {
					defer wg.Done()
					path := fmt.Sprintf("/tmp/bench%d.trace", t)
					for next.Add(1) <= int64(b.N) {
						if err := c.Chunk(ctx, path, nos[t], data); err != nil {
							b.Error(err)
							return
						}
						nos[t]++
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if v := p.Violations(); len(v) > 0 {
				b.Fatalf("violations: %q", v)
			}
		})
	}
}
