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
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
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
		h.done <- pumpFrom(rt, "/tmp/pump-test.trace", sp, r, gather, false, func(m interface{}) {
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

func (o *countingObserver) OutputRead(n int64) { o.read.Add(n) }
func (o *countingObserver) ChunkAcked(n int64) { o.acked.Add(n) }
func (o *countingObserver) SpoolBytes(d int64) { o.spooled.Add(d) }

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
			ctx := context.Background()
			started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(fmt.Sprintf("flood %d", 512<<10)), Lasting: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			rec, err := p.WaitFinished(wctx, started.FilePath)
			if err != nil {
				t.Fatal(err)
			}
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
			ctx := context.Background()
			started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(fmt.Sprintf("flood %d", size)), Lasting: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			rec, err := p.WaitFinished(wctx, started.FilePath)
			if err != nil {
				t.Fatal(err)
			}
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
			ctx := context.Background()
			started, err := rt.Start(ctx, StartRequest{Template: fakeTemplate(fmt.Sprintf("flood %d", size)), Lasting: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			rec, err := p.WaitFinished(wctx, started.FilePath)
			if err != nil {
				t.Fatal(err)
			}
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
