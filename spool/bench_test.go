package spool

import (
	"bytes"
	"testing"
)

const benchChunk = 50 << 10 // submit-chunk-size 51200

// BenchmarkAppend appends 50 KiB chunks under each sync policy. Chunks are
// acknowledged off the clock every 64 MiB so that the disk use stays flat.
func BenchmarkAppend(b *testing.B) {
	line := []byte("{\"probe\":\"xmalloc\",\"pid\":42}\n")
	data := bytes.Repeat(line, benchChunk/len(line)+1)[:benchChunk]
	for _, p := range policies {
		b.Run(p.String(), func(b *testing.B) {
			s := create(b, Options{Sync: p, SegmentBytes: 16 << 20})
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(data); err != nil {
					b.Fatal(err)
				}
				if s.Pending() >= 64<<20 {
					b.StopTimer()
					for no := s.Acked(); no < s.Next(); no++ {
						if err := s.Ack(no); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkRead reads 50 KiB chunks back (from the page cache) with their
// checksum verified.
func BenchmarkRead(b *testing.B) {
	const n = 200
	data := bytes.Repeat([]byte("x"), benchChunk)
	s := create(b, Options{Sync: SyncNever})
	for range n {
		if _, err := s.Append(data); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := s.Read(i % n); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReadInto is BenchmarkRead into one reused buffer, as the
// sender reads.
func BenchmarkReadInto(b *testing.B) {
	const n = 200
	data := bytes.Repeat([]byte("x"), benchChunk)
	s := create(b, Options{Sync: SyncNever})
	for range n {
		if _, err := s.Append(data); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, benchChunk+RecordOverhead)
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := s.ReadInto(buf, i%n); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSend is the whole life of a 50 KiB chunk under the default
// policy: Append, Read, Ack (which reads it once more for the hash and
// writes a state slot).
func BenchmarkSend(b *testing.B) {
	data := bytes.Repeat([]byte("y"), benchChunk)
	s := create(b, Options{SegmentBytes: 16 << 20})
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	for b.Loop() {
		no, err := s.Append(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Read(no); err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(no); err != nil {
			b.Fatal(err)
		}
	}
}
