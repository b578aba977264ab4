package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

// pumpHarness runs pumpFrom on a pipe the test writes, with its reports
// collected.
type pumpHarness struct {
	t    *testing.T
	sp   *spool.Spool
	w    *os.File
	mu   sync.Mutex
	msgs []interface{}
	done chan error
}

func startPump(t *testing.T, gather time.Duration, o Options) *pumpHarness {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), nil, spool.Options{Sync: spool.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	rt := &Runtime{log: slog.New(slog.NewTextHandler(io.Discard, nil)), opts: o}
	h := &pumpHarness{t: t, sp: sp, w: w, done: make(chan error, 1)}
	go func() {
		h.done <- pumpFrom(rt, messages.TraceEvent{Path: "/tmp/pump-test.trace"}, sp, r, 0, gather, false, func(m interface{}) {
			h.mu.Lock()
			h.msgs = append(h.msgs, m)
			h.mu.Unlock()
		})
	}()
	return h
}

// chunk waits for chunk no of the spool and returns it.
func (h *pumpHarness) chunk(no int64) string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.sp.Wait(ctx, no); err != nil {
		h.t.Fatalf("waiting for chunk %d: %v", no, err)
	}
	b, err := h.sp.Read(no)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// read is the sum of the bytes read the pump reported.
func (h *pumpHarness) read() (n int64, ended bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		switch m := m.(type) {
		case *chunkSpooled:
			if ended {
				h.t.Error("bytes read reported after pumpEnded")
			}
			n += m.read
		case *pumpEnded:
			ended = true
		}
	}
	return n, ended
}

// TestPumpGatherEndsAtFlush: a gather wait far longer than the test
// (an hour) still lets a quiet trace's line out as a short chunk: the wait
// ends at the flush deadline. The pipe stays open, so only the flush path
// can cut the chunks; without the bound the test would hang.
func TestPumpGatherEndsAtFlush(t *testing.T) {
	h := startPump(t, time.Hour, Options{ChunkSize: 1 << 10, FlushInterval: 20 * time.Millisecond})
	lines := []string{"{\"a\":1}\n", "{\"b\":2}\n{\"c\":3}\n", "{\"d\":4}\n"}
	for i, l := range lines {
		if _, err := h.w.WriteString(l); err != nil {
			t.Fatal(err)
		}
		if got := h.chunk(int64(i)); got != l {
			t.Errorf("chunk %d = %q, want %q", i, got, l)
		}
	}
	h.w.Close()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	if !h.sp.Sealed() || h.sp.Next() != int64(len(lines)) {
		t.Errorf("spool sealed %v with %d chunks, want sealed with %d", h.sp.Sealed(), h.sp.Next(), len(lines))
	}
	want := int64(len(strings.Join(lines, "")))
	if n, ended := h.read(); n != want || !ended {
		t.Errorf("reported %d bytes read (ended %v), want %d and pumpEnded", n, ended, want)
	}
}

// TestPumpReportsExactCounts: many small writes, gathered and reported
// at most every reportEvery, add up to exactly what was written, all
// reported before pumpEnded.
func TestPumpReportsExactCounts(t *testing.T) {
	h := startPump(t, gatherWait, Options{ChunkSize: 4 << 10, FlushInterval: time.Second})
	var want bytes.Buffer
	for i := range 5000 {
		l := fmt.Sprintf("{\"seq\":%d}\n", i)
		want.WriteString(l)
		if _, err := h.w.WriteString(l); err != nil { // one write per line, as bpftrace
			t.Fatal(err)
		}
	}
	h.w.Close()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for no := range h.sp.Next() {
		got.WriteString(h.chunk(no))
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("the spool holds %d bytes, want the %d written", got.Len(), want.Len())
	}
	if n, ended := h.read(); n != int64(want.Len()) || !ended {
		t.Errorf("reported %d bytes read (ended %v), want %d and pumpEnded", n, ended, want.Len())
	}
}

// countingObserver counts the bytes read, acknowledged and spooled that
// the runtime reports.
type countingObserver struct {
	NopObserver
	read, acked, spooled atomic.Int64
}

func (o *countingObserver) OutputRead(_ messages.TraceEvent, n int64)    { o.read.Add(n) }
func (o *countingObserver) ChunkAcked(_ messages.TraceEvent, _, n int64) { o.acked.Add(n) }
func (o *countingObserver) SpoolBytes(_ messages.TraceEvent, d int64)    { o.spooled.Add(d) }

// TestAckedBytesObservedOnce: every acknowledged byte reaches the Observer
// exactly once, and the spool-bytes gauge returns to 0, also when the
// sender or the trace actor is restarted mid-trace, or acknowledgements
// are reported in batches (the actor takes the position from the spool).
func TestAckedBytesObservedOnce(t *testing.T) {
	tests := []struct {
		name   string
		sender int // panic the sender at this acknowledgement (0: never)
		actor  int // panic the trace actor at this chunkAcked (0: never)
	}{
		{name: "no fault"},
		{name: "sender restarted", sender: 3},
		{name: "trace actor restarted", actor: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, fa := &faultAt{n: tt.sender}, &faultAt{n: tt.actor}
			obs := &countingObserver{}
			hooks := &testHooks{
				onCheckpoint: func(worker, path string) {
					if worker == wSender && tt.sender > 0 && fs.hit() {
						panic("injected fault in the sender")
					}
				},
				onReceive: func(m interface{}) {
					if _, ok := m.(*chunkAcked); ok && tt.actor > 0 && fa.hit() {
						panic("injected fault in the trace actor")
					}
				},
			}
			rt, p, _ := newTestRuntime(t, func(o *Options) {
				o.hooks, o.CgroupParent, o.Observer, o.ChunkSize = hooks, "-", obs, 4<<10
			})
			rec := deliverFake(t, rt, p, fmt.Sprintf("flood %d", 512<<10), 60*time.Second)
			if (tt.sender > 0 && !fs.wasFired()) || (tt.actor > 0 && !fa.wasFired()) {
				t.Fatal("the fault was never injected")
			}
			waitFor(t, func() bool { return obs.acked.Load() >= int64(len(rec.Data)) })
			if got := obs.acked.Load(); got != int64(len(rec.Data)) || rec.Finished.Bytes != got {
				t.Errorf("acknowledged bytes observed %d, platform holds %d, finished says %d", got, len(rec.Data), rec.Finished.Bytes)
			}
			if got := obs.spooled.Load(); got != 0 {
				t.Errorf("spool bytes gauge ends at %d, want 0", got)
			}
		})
	}
}

// TestPumpPanicInGatheredBatch: the pump panics after staging a read of
// many lines (the fake tracer's flood writes 64 KiB at once) and is
// started again: the platform gets every line once, in order, and the
// bytes read the runtime counted are exactly those written.
func TestPumpPanicInGatheredBatch(t *testing.T) {
	const size = 1 << 20
	for _, n := range []int{1, 3, 7} {
		t.Run(fmt.Sprintf("read %d", n), func(t *testing.T) {
			f := &faultAt{n: n}
			obs := &countingObserver{}
			hooks := &testHooks{onCheckpoint: func(worker, path string) {
				if worker == wPump && f.hit() {
					panic("injected fault in the pump")
				}
			}}
			rt, p, _ := newTestRuntime(t, func(o *Options) {
				o.hooks, o.CgroupParent, o.Observer, o.ChunkSize = hooks, "-", obs, 50<<10
			})
			rec := deliverFake(t, rt, p, fmt.Sprintf("flood %d", size), 60*time.Second)
			if !f.wasFired() {
				t.Fatal("the fault was never injected")
			}
			if rec.Finished.Reason != messages.ReasonCompleted || rec.Finished.Bytes != int64(len(rec.Data)) {
				t.Errorf("finished %+v, platform holds %d bytes", rec.Finished, len(rec.Data))
			}
			lines := bytes.Split(bytes.TrimSuffix(rec.Data, []byte("\n")), []byte("\n"))
			for i, l := range lines {
				var v struct{ Seq int }
				if err := json.Unmarshal(l, &v); err != nil || v.Seq != i {
					t.Fatalf("line %d is %.60q (%v), want seq %d", i, l, err, i)
				}
			}
			if len(rec.Data) < size {
				t.Errorf("platform holds %d bytes, want at least %d", len(rec.Data), size)
			}
			waitFor(t, func() bool { return obs.read.Load() >= int64(len(rec.Data)) })
			if got := obs.read.Load(); got != int64(len(rec.Data)) {
				t.Errorf("bytes read counted %d, want %d", got, len(rec.Data))
			}
		})
	}
}

// TestPipelinedSenderOrderAndRetry: the sender encodes chunk n+1 while n
// is in flight; with the platform refusing requests (503) it
// (twice after every fifth chunk) still delivers every chunk once, in
// order, each resent with the same bytes (platformtest reports a gap, a reordering or a resend with other
// bytes as a violation), and the sender panicking after an accepted chunk
// resumes from the spool.
func TestPipelinedSenderOrderAndRetry(t *testing.T) {
	for _, panicAt := range []int{0, 4} {
		t.Run(fmt.Sprintf("panic at %d", panicAt), func(t *testing.T) {
			f := &faultAt{n: panicAt}
			var p *platformtest.Platform
			var acks atomic.Int64
			hooks := &testHooks{onCheckpoint: func(worker, path string) {
				if worker != wSender {
					return
				}
				if n := acks.Add(1); n%5 == 0 {
					p.FailNext(2, 503) // the next chunk (already encoded) is refused twice
				}
				if panicAt > 0 && f.hit() {
					panic("injected fault in the sender")
				}
			}}
			rt, pl, _ := newTestRuntime(t, func(o *Options) { o.hooks, o.CgroupParent, o.ChunkSize = hooks, "-", 4<<10 })
			p = pl
			if _, ok := rt.opts.Submitter.(chunkPreparer); !ok {
				t.Fatal("the test's submitter does not prepare chunks: the pipelined sender is not used")
			}
			const size = 256 << 10
			rec := deliverFake(t, rt, p, fmt.Sprintf("flood %d", size), 90*time.Second)
			lines := bytes.Split(bytes.TrimSuffix(rec.Data, []byte("\n")), []byte("\n"))
			for i, l := range lines {
				var v struct{ Seq int }
				if err := json.Unmarshal(l, &v); err != nil || v.Seq != i {
					t.Fatalf("line %d is %.60q (%v), want seq %d", i, l, err, i)
				}
			}
			if len(rec.Data) < size || rec.Finished.Chunks != rec.ChunkCount || rec.Finished.SHA256 != rec.SHA256 {
				t.Errorf("platform holds %d bytes in %d chunks; finished %+v", len(rec.Data), rec.ChunkCount, rec.Finished)
			}
			if panicAt > 0 && !f.wasFired() {
				t.Error("the fault was never injected")
			}
		})
	}
}

// TestReadFor: a read fills the writer's buffer up to a chunk boundary,
// never asks for less than minRead nor more than readSize, and takes a
// pipe no larger than a read whole.
func TestReadFor(t *testing.T) {
	const big = tracer.StdoutPipeSize
	tests := []struct {
		chunk, buffered, capacity, want int
	}{
		{51200, 0, big, 51200},
		{51200, 140, big, 51060},
		{51200, 140, 0, 51060}, // capacity not known
		{51200, 140, readSize + 1, 51060},
		{51200, 140, readSize, readSize}, // a pipe a read empties
		{51200, 140, 4096, readSize},
		{51200, 30000, big, 21200},
		{51200, 34816, big, minRead},
		{51200, 35000, big, readSize}, // the boundary is too near: a full read
		{51200, 36864, big, readSize}, // 102400 is exactly a full read away
		{51200, 36865, big, 102400 - 36865},
		{51200, 51199, big, 51201},
		{4096, 0, big, readSize},
		{4096, 100, big, readSize - 100},
		{4096, 4095, big, readSize - 4095},
		{16 << 10, 1, big, readSize - 1},
		{readSize, 0, big, readSize},
		{readSize, 1000, big, readSize - 1000},
		{readSize, readSize - 100, big, readSize}, // 100 bytes to the boundary
		{1 << 20, 0, big, readSize},               // a chunk larger than a read
		{1 << 20, 1<<20 - 20000, big, 20000},
		{1 << 20, 1<<20 - 100, big, readSize},
		{1, 0, big, readSize},
		{0, 0, big, readSize},
	}
	for _, tt := range tests {
		got := readFor(tt.chunk, tt.buffered, tt.capacity)
		if got != tt.want {
			t.Errorf("readFor(%d, %d, %d) = %d, want %d", tt.chunk, tt.buffered, tt.capacity, got, tt.want)
		}
		if got < minRead || got > readSize {
			t.Errorf("readFor(%d, %d, %d) = %d, outside %d..%d", tt.chunk, tt.buffered, tt.capacity, got, minRead, readSize)
		}
	}
}

// floodReader returns a stream of 140-byte lines, as much as each Read
// asks for (a pipe that always holds more), and records the staging
// file's size before its EOF.
type floodReader struct {
	data   []byte
	sp     *spool.Spool
	asked  []int
	staged int64 // the staging file's size at the end
	cut    int64 // the bytes in chunks then
}

func (r *floodReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if fi, err := os.Stat(filepath.Join(r.sp.Dir(), "staged")); err == nil {
			r.staged, r.cut = fi.Size(), r.sp.Bytes()
		}
		return 0, io.EOF
	}
	r.asked = append(r.asked, len(p))
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestPumpBulkStagesLittle: in bulk output every read but the first
// completes a chunk, so that the writer stages only the tails of lines
// cut at chunk boundaries, and the spool gets every byte.
func TestPumpBulkStagesLittle(t *testing.T) {
	const size, chunk = 4 << 20, 50 << 10
	var want bytes.Buffer
	for i := 0; want.Len() < size; i++ {
		l := fmt.Sprintf("{\"seq\":%d,\"pad\":\"", i)
		want.WriteString(l + strings.Repeat("x", 140-len(l)-3) + "\"}\n")
	}
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), nil, spool.Options{Sync: spool.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r := &floodReader{data: bytes.Clone(want.Bytes()), sp: sp}
	rt := &Runtime{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		opts: Options{ChunkSize: chunk, FlushInterval: time.Hour, Observer: NopObserver{}}}
	if err := pumpFrom(rt, messages.TraceEvent{Path: "/tmp/pump-test.trace"}, sp, r, 0, 0, false, func(interface{}) {}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for no := range sp.Next() {
		b, err := sp.Read(no)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(b)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the spool holds %d bytes, want the %d read", got.Len(), want.Len())
	}
	for i, n := range r.asked {
		if n < minRead || n > readSize {
			t.Errorf("read %d asked for %d bytes", i, n)
		}
	}
	// Staged: the bytes held at the end (the last read's, short) and at
	// most a line's tail per read before, with the magic and a record
	// header each.
	held := int64(want.Len()) - r.cut
	if limit := 8 + int64(len(r.asked))*(140+16) + held; r.staged == 0 || r.staged > limit {
		t.Errorf("%d reads staged %d bytes (%d held at the end), want some and at most %d", len(r.asked), r.staged, held, limit)
	}
	t.Logf("%d reads, %d bytes staged for %d (%d held at the end)", len(r.asked), r.staged, want.Len(), held)
}

// BenchmarkPumpFrom pumps 32 MiB of 140-byte lines, written to a pipe in
// 64 KiB writes as fast as it takes them, into a spool (50 KiB chunks, no
// fsync), with the gather wait of the pipe's size: the kernel's 64 KiB,
// and tracer.StdoutPipeSize as a tracer's stdout has. CPU-s/GB is the
// process's CPU time (the writing goroutine's included) per GB pumped.
func BenchmarkPumpFrom(b *testing.B) {
	const size, chunk = 32 << 20, 50 << 10
	var stream bytes.Buffer
	for i := 0; stream.Len() < size; i++ {
		l := fmt.Sprintf("{\"seq\":%d,\"pad\":\"", i)
		stream.WriteString(l + strings.Repeat("x", 140-len(l)-3) + "\"}\n")
	}
	data := stream.Bytes()[:size]
	rt := &Runtime{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		opts: Options{ChunkSize: chunk, FlushInterval: time.Second, Observer: NopObserver{}}}
	for _, pipeSize := range []int{64 << 10, tracer.StdoutPipeSize} {
		b.Run(fmt.Sprintf("pipe=%dKiB", pipeSize>>10), func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(size)
			var cpu time.Duration
			i := 0
			for b.Loop() {
				sp, err := spool.Create(filepath.Join(dir, fmt.Sprint(i)), nil, spool.Options{Sync: spool.SyncNever})
				if err != nil {
					b.Fatal(err)
				}
				i++
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				capacity := 64 << 10
				if rc, err := w.SyscallConn(); err == nil && pipeSize != capacity {
					rc.Control(func(fd uintptr) {
						if n, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize); err == nil {
							capacity = n
						}
					})
				}
				if capacity != pipeSize {
					b.Skipf("the pipe has %d bytes, not %d", capacity, pipeSize)
				}
				go func() {
					for p := data; len(p) > 0; p = p[min(len(p), 64<<10):] {
						if _, err := w.Write(p[:min(len(p), 64<<10)]); err != nil {
							break
						}
					}
					w.Close()
				}()
				c0 := cpuTime(b)
				if err := pumpFrom(rt, messages.TraceEvent{Path: "/tmp/pump-bench.trace"}, sp, r, capacity, gatherFor(capacity), false, func(interface{}) {}); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime(b) - c0
				r.Close()
				if sp.Bytes() != size {
					b.Fatalf("spooled %d bytes, want %d", sp.Bytes(), size)
				}
				if err := sp.Remove(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(cpu.Seconds()/(float64(i)*size/1e9), "CPU-s/GB")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
