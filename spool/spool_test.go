package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var policies = []SyncPolicy{SyncInterval, SyncAlways, SyncNever}

func TestRoundTrip(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			s := create(t, Options{Sync: p, SegmentBytes: 256})
			checkState(t, s, 0, 0)
			appendRange(t, s, 0, 40)
			checkChunks(t, s, 0, 40)
			checkState(t, s, 40, 0)
			ackRange(t, s, 0, 25)
			checkState(t, s, 40, 25)
			checkChunks(t, s, 25, 40)

			if _, err := s.Read(40); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read(40) error = %v, want ErrNotFound", err)
			}
			if _, err := s.Read(0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read(0) after its segment was deleted: error = %v, want ErrNotFound", err)
			}
			if err := s.Ack(26); !errors.Is(err, ErrOutOfOrder) {
				t.Errorf("Ack(26) error = %v, want ErrOutOfOrder", err)
			}
			if err := s.Ack(40); !errors.Is(err, ErrNotFound) {
				t.Errorf("Ack(40) error = %v, want ErrNotFound", err)
			}
			if err := s.Ack(3); err != nil {
				t.Errorf("Ack(3) again: %v", err)
			}
			checkState(t, s, 40, 25)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

func TestEmptyChunk(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	no, err := s.Append(nil)
	if err != nil || no != 0 {
		t.Fatalf("Append(nil) = %d, %v", no, err)
	}
	got, err := s.Read(0)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read(0) = %q, %v", got, err)
	}
	if err := s.Ack(0); err != nil {
		t.Fatal(err)
	}
}

func TestReopenAfterClose(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "sealed"}[sealed], func(t *testing.T) {
			s := create(t, Options{SegmentBytes: 256})
			appendRange(t, s, 0, 30)
			ackRange(t, s, 0, 12)
			meta := []byte(`{"code":0,"reason":"completed"}`)
			if err := s.SetMeta(meta); err != nil {
				t.Fatal(err)
			}
			if sealed {
				if err := s.Seal(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s2, r := reopen(t, s.Dir(), Options{SegmentBytes: 256})
			if len(r.Damage) != 0 || r.DroppedBytes != 0 || r.AckAdvanced != 0 {
				t.Errorf("Recovery of a clean spool = %+v", r)
			}
			if r.Chunks != 30 || r.Acked != 12 || r.Sealed != sealed || r.Bytes != s2.Bytes() || r.Pending != s2.Pending() {
				t.Errorf("Recovery = %+v", r)
			}
			if got := s2.Meta(); !bytes.Equal(got, meta) {
				t.Errorf("Meta() = %q, want %q", got, meta)
			}
			if s2.Sealed() != sealed {
				t.Errorf("Sealed() = %v", s2.Sealed())
			}
			checkState(t, s2, 30, 12)
			checkChunks(t, s2, 12, 30)
			if sealed {
				if _, err := s2.Append(chunk(30)); !errors.Is(err, ErrSealed) {
					t.Errorf("Append after reopening a sealed spool: %v, want ErrSealed", err)
				}
				return
			}
			appendRange(t, s2, 30, 35)
			ackRange(t, s2, 12, 35)
			checkState(t, s2, 35, 35)
		})
	}
}

// TestCrashWithoutClose opens a spool a second time without closing the
// first, as after a SIGKILL: nothing appended or acknowledged is lost.
func TestCrashWithoutClose(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			o := Options{Sync: p, SegmentBytes: 300, SyncEvery: time.Hour}
			s := create(t, o)
			appendRange(t, s, 0, 50)
			ackRange(t, s, 0, 20)
			// s is abandoned, not closed.

			s2, r := reopen(t, s.Dir(), o)
			if len(r.Damage) != 0 || r.DroppedBytes != 0 {
				t.Errorf("Recovery = %+v", r)
			}
			checkState(t, s2, 50, 20)
			checkChunks(t, s2, 20, 50)
			appendRange(t, s2, 50, 60)
			checkChunks(t, s2, 20, 60)
		})
	}
}

func TestCreateRefusesUsedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, nil, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create in a non-empty dir: %v, want fs.ErrExist", err)
	}
	empty := t.TempDir()
	s, err := Create(empty, nil, Options{})
	if err != nil {
		t.Fatalf("Create in an empty dir: %v", err)
	}
	s.Close()
	if _, err := Create(filepath.Join(t.TempDir(), "a"), nil, Options{SegmentBytes: -1}); err == nil {
		t.Error("Create with bad options: no error")
	}
}

func TestCreateMode(t *testing.T) {
	s := create(t, Options{})
	fi, err := os.Stat(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode = %v, want 0700", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(s.Dir())
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, _, err := Open(filepath.Join(t.TempDir(), "missing"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing dir) = %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	if _, _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open(dir without meta) = %v, want ErrCorrupt", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Open of a non-spool created files: %v", ents)
	}
	s := create(t, Options{})
	s.Close()
	if _, _, err := Open(s.Dir(), Options{SyncEvery: -1}); err == nil {
		t.Error("Open with bad options: no error")
	}
}

func TestSegmentsDeletedAfterAck(t *testing.T) {
	s := create(t, Options{Sync: SyncNever, SegmentBytes: 1}) // one chunk per segment
	appendRange(t, s, 0, 10)
	if got := len(segFiles(t, s.Dir())); got != 10 {
		t.Fatalf("%d segment files after 10 appends, want 10", got)
	}
	ackRange(t, s, 0, 4)
	if got, want := segFiles(t, s.Dir()), []string{segmentName(4), segmentName(5)}; len(got) != 6 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("segment files after 4 acks = %v", got)
	}
	ackRange(t, s, 4, 10)
	if got := segFiles(t, s.Dir()); len(got) != 1 || got[0] != segmentName(9) {
		t.Fatalf("segment files after all acks = %v, want only the last", got)
	}
	// A new chunk rotates out of the fully acknowledged segment, which goes.
	appendRange(t, s, 10, 11)
	if got := segFiles(t, s.Dir()); len(got) != 1 || got[0] != segmentName(10) {
		t.Fatalf("segment files after the next append = %v", got)
	}
	checkState(t, s, 11, 10)
	checkChunks(t, s, 10, 11)
}

func TestSegmentSizeTarget(t *testing.T) {
	const target = 4096
	s := create(t, Options{Sync: SyncNever, SegmentBytes: target})
	appendRange(t, s, 0, 200)
	names := segFiles(t, s.Dir())
	for _, n := range names[:len(names)-1] {
		fi, err := os.Stat(filepath.Join(s.Dir(), n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > target {
			t.Errorf("segment %s is %d bytes, over the %d target", n, fi.Size(), target)
		}
	}
	// A chunk larger than the target gets a segment of its own.
	big := bytes.Repeat([]byte("x"), 3*target)
	no, err := s.Append(big)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(no)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Read(big) = %d bytes, %v", len(got), err)
	}
}

func TestErrFull(t *testing.T) {
	c := bytes.Repeat([]byte("y"), 100)
	s := create(t, Options{Sync: SyncNever, MaxBytes: 250})
	for i := range 2 {
		if _, err := s.Append(c); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if _, err := s.Append(c); !errors.Is(err, ErrFull) {
		t.Fatalf("third Append = %v, want ErrFull", err)
	}
	if _, err := s.Append(c[:50]); err != nil {
		t.Fatalf("Append up to the cap: %v", err)
	}
	if s.Next() != 3 || s.Pending() != 250 {
		t.Fatalf("Next, Pending = %d, %d", s.Next(), s.Pending())
	}
	if err := s.Ack(0); err != nil {
		t.Fatal(err)
	}
	if no, err := s.Append(c); err != nil || no != 3 {
		t.Fatalf("Append after an ack freed room = %d, %v", no, err)
	}
}

func TestTooLarge(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	if _, err := s.Append(make([]byte, MaxChunkBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append(MaxChunkBytes+1) = %v, want ErrTooLarge", err)
	}
	if s.Next() != 0 {
		t.Fatalf("Next() = %d after a refused Append", s.Next())
	}
}

func TestWait(t *testing.T) {
	ctx := context.Background()
	t.Run("append", func(t *testing.T) {
		s := create(t, Options{Sync: SyncNever})
		errc := make(chan error, 1)
		go func() { errc <- s.Wait(ctx, 1) }()
		appendRange(t, s, 0, 1)
		appendRange(t, s, 1, 2)
		if err := <-errc; err != nil {
			t.Fatalf("Wait(1) = %v", err)
		}
		if err := s.Wait(ctx, 0); err != nil {
			t.Fatalf("Wait(0) on an existing chunk = %v", err)
		}
	})
	t.Run("seal", func(t *testing.T) {
		s := create(t, Options{Sync: SyncNever})
		appendRange(t, s, 0, 1)
		errc := make(chan error, 1)
		go func() { errc <- s.Wait(ctx, 1) }()
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != io.EOF {
			t.Fatalf("Wait past the end of a sealed spool = %v, want io.EOF", err)
		}
		if err := s.Wait(ctx, 0); err != nil {
			t.Fatalf("Wait(0) on a sealed spool holding chunk 0 = %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		s := create(t, Options{Sync: SyncNever})
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- s.Wait(cctx, 0) }()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		s := create(t, Options{Sync: SyncNever})
		errc := make(chan error, 1)
		go func() { errc <- s.Wait(ctx, 0) }()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait after Close = %v, want ErrClosed", err)
		}
	})
}

func TestClosed(t *testing.T) {
	s := create(t, Options{})
	appendRange(t, s, 0, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := s.Append(chunk(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append = %v", err)
	}
	if _, err := s.Read(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Read = %v", err)
	}
	if err := s.Ack(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack = %v", err)
	}
	if err := s.Seal(); !errors.Is(err, ErrClosed) {
		t.Errorf("Seal = %v", err)
	}
	if err := s.SetMeta(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMeta = %v", err)
	}
	if err := s.Wait(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait = %v", err)
	}
}

func TestSealTwice(t *testing.T) {
	s := create(t, Options{})
	for range 2 {
		if err := s.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(chunk(0)); !errors.Is(err, ErrSealed) {
		t.Fatalf("Append after Seal = %v", err)
	}
}

func TestRemoveAndList(t *testing.T) {
	root := t.TempDir()
	if got, err := List(filepath.Join(root, "none")); err != nil || len(got) != 0 {
		t.Fatalf("List(missing root) = %v, %v", got, err)
	}
	var spools []*Spool
	for _, name := range []string{"b", "a", "c"} {
		s, err := Create(filepath.Join(root, name), []byte(name), Options{Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		spools = append(spools, s)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("List = %v, want %v", got, want)
	}
	appendRange(t, spools[0], 0, 5)
	if err := spools[0].Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spools[0].Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("spool dir after Remove: %v", err)
	}
	if _, err := spools[0].Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Remove = %v", err)
	}
	if got, _ := List(root); len(got) != 2 {
		t.Fatalf("List after Remove = %v", got)
	}
	for _, s := range spools[1:] {
		s.Close()
	}
}

// TestConcurrent runs an appender, a sender and an observer at once over
// small segments and a size cap, as the trace actor does.
func TestConcurrent(t *testing.T) {
	const n = 300
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			o := Options{Sync: p, SegmentBytes: 512, MaxBytes: 1024, SyncEvery: time.Millisecond}
			if p == SyncAlways {
				o.Sync = SyncNever // keep the run short; fsync paths are covered elsewhere
			}
			s := create(t, o)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			errc := make(chan error, 3)

			wg.Add(1)
			go func() { // appender
				defer wg.Done()
				for i := 0; i < n; {
					no, err := s.Append(chunk(i))
					if errors.Is(err, ErrFull) {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					if err != nil || no != int64(i) {
						errc <- errors.Join(err, errors.New("append: wrong number"))
						return
					}
					i++
				}
				if err := s.Seal(); err != nil {
					errc <- err
				}
			}()

			wg.Add(1)
			go func() { // sender
				defer wg.Done()
				for no := s.Acked(); ; no++ {
					err := s.Wait(ctx, no)
					if err == io.EOF {
						return
					}
					if err != nil {
						errc <- err
						return
					}
					data, err := s.Read(no)
					if err != nil {
						errc <- err
						return
					}
					if !bytes.Equal(data, chunk(int(no))) {
						errc <- errors.New("sender read wrong bytes")
						return
					}
					if err := s.Ack(no); err != nil {
						errc <- err
						return
					}
				}
			}()

			stop := make(chan struct{})
			var obs sync.WaitGroup
			obs.Add(1)
			go func() { // observer
				defer obs.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if s.Acked() > s.Next() || s.Pending() < 0 || s.Pending() > o.MaxBytes {
						errc <- errors.New("observer: inconsistent counters")
						return
					}
					_ = s.SHA256()
					_, _ = s.Read(s.Acked()) // may race with the ack; must not fail badly
				}
			}()

			wg.Wait()
			close(stop)
			obs.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			checkState(t, s, n, n)
			if got := len(segFiles(t, s.Dir())); got != 1 {
				t.Errorf("%d segment files after everything was acknowledged, want 1", got)
			}
		})
	}
}

// TestSHA256AcrossReopen checks the running hash over chunks whose
// segments were deleted before a crash, then after a clean close.
func TestSHA256AcrossReopen(t *testing.T) {
	o := Options{SegmentBytes: 256}
	s := create(t, o)
	appendRange(t, s, 0, 40)
	ackRange(t, s, 0, 30)
	if got := segFiles(t, s.Dir()); len(got) == 0 || got[0] == segmentName(0) {
		t.Fatalf("segment 0 still there after acks: %v", got)
	}
	s2, _ := reopen(t, s.Dir(), o) // s abandoned, as if killed
	checkState(t, s2, 40, 30)
	appendRange(t, s2, 40, 60)
	ackRange(t, s2, 30, 55)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3, _ := reopen(t, s.Dir(), o)
	checkState(t, s3, 60, 55)
	ackRange(t, s3, 55, 60)
	checkState(t, s3, 60, 60)
}

// TestReadInto: ReadInto returns each chunk's bytes, in the buffer given
// when it is large enough (and in a new one otherwise).
func TestReadInto(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	chunks := [][]byte{[]byte("first\n"), bytes.Repeat([]byte("second line\n"), 100), []byte("3\n")}
	for _, c := range chunks {
		if _, err := s.Append(c); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 256+RecordOverhead)
	for no, want := range chunks {
		got, err := s.ReadInto(buf, int64(no))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("chunk %d = %q, want %q", no, got, want)
		}
		inBuf := len(want)+RecordOverhead <= cap(buf)
		if shared := &buf[:cap(buf)][cap(buf)-1] == &got[:cap(got)][cap(got)-1]; shared != inBuf {
			t.Errorf("chunk %d (%d bytes): read into the given buffer %v, want %v", no, len(want), shared, inBuf)
		}
	}
	if _, err := s.ReadInto(buf, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadInto past the end: %v, want ErrNotFound", err)
	}
}
