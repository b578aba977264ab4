package spool

import (
	"bytes"
	"fmt"
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

// benchLines is a stream of 140-byte JSON lines, as bpftrace prints one per
// event, long enough that commits taken from it cyclically do not repeat
// their cut pattern quickly.
func benchLines() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 8<<20; i++ {
		l := fmt.Appendf(nil, "{\"probe\":\"uprobe:/bin/bash:xmalloc\",\"tid\":%7d,\"seq\":%9d,\"ts\":%19d,\"pad\":\"", i%9973, i, int64(i)*7919)
		l = append(l, bytes.Repeat([]byte("x"), 140-3-len(l))...)
		b.Write(append(l, "\"}\n"...))
	}
	return b.Bytes()
}

// benchWriter is a Writer on a fresh spool that keeps its disk use flat:
// its chunks are acknowledged off the clock every 64 MiB.
type benchWriter struct {
	b *testing.B
	s *Spool
	w *Writer
}

func newBenchWriter(b *testing.B) *benchWriter {
	s := create(b, Options{Sync: SyncNever, SegmentBytes: 16 << 20})
	w := NewWriter(s, benchChunk)
	if err := w.StagingErr(); err != nil {
		b.Fatal(err)
	}
	return &benchWriter{b: b, s: s, w: w}
}

func (bw *benchWriter) trim() {
	if bw.s.Pending() < 64<<20 {
		return
	}
	bw.b.StopTimer()
	for no := bw.s.Acked(); no < bw.s.Next(); no++ {
		if err := bw.s.Ack(no); err != nil {
			bw.b.Fatal(err)
		}
	}
	bw.b.StartTimer()
}

// BenchmarkWriterLines feeds 140-byte lines to a Writer (50 KiB chunks)
// the way the pump does, through Space and Commit, one Commit per read:
// read=64KiB commits 64 KiB at a time (a pump that always asks the pipe
// for 64 KiB, in bulk output), read=fill the size that completes the
// Writer's chunk (floor((buffered+64 KiB)/chunk)*chunk - buffered, as the
// pump asks the pipe for), read=line one line at a time (quiet output).
func BenchmarkWriterLines(b *testing.B) {
	const readSize = 64 << 10
	stream := benchLines()
	for _, tc := range []struct {
		name string
		read func(buffered int) int
	}{
		{"read=64KiB", func(int) int { return readSize }},
		{"read=fill", func(buffered int) int {
			if r := (buffered+readSize)/benchChunk*benchChunk - buffered; r >= 16<<10 {
				return r
			}
			return readSize
		}},
		{"read=line", func(int) int { return 140 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bw := newBenchWriter(b)
			bw.w.Space(readSize)
			b.ReportAllocs()
			off, total := 0, int64(0)
			for b.Loop() {
				n := tc.read(bw.w.Buffered())
				if off+n > len(stream) {
					off = 0
				}
				copy(bw.w.Space(n), stream[off:off+n])
				off += n
				if err := bw.w.Commit(n); err != nil {
					b.Fatal(err)
				}
				total += int64(n)
				bw.trim()
			}
			b.ReportMetric(float64(total)/1e6/b.Elapsed().Seconds(), "MB/s")
		})
	}
}

// BenchmarkWriterBulk writes 1 MiB of 140-byte lines at once per Write:
// almost all of it is cut into chunks in the same call.
func BenchmarkWriterBulk(b *testing.B) {
	stream := benchLines()
	const n = 1 << 20
	bw := newBenchWriter(b)
	b.SetBytes(n)
	b.ReportAllocs()
	off := 0
	for b.Loop() {
		if off+n > len(stream) {
			off = 0
		}
		if _, err := bw.w.Write(stream[off : off+n]); err != nil {
			b.Fatal(err)
		}
		off += n
		bw.trim()
	}
}
