package native

import (
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestOutput checks Output's hand-over as a pipe reader would see it: the
// bytes in order across chunks and short reads, a deadline with nothing
// waiting, EOF after the end, ErrClosed for a Read waiting when Close
// comes, and a writer that drops (never blocks) once the reader closed.
func TestOutput(t *testing.T) {
	o := newOutput()
	var want []byte
	for i := range 2 * outputChunks {
		if i >= outputChunks {
			// Every chunk is waiting: read the oldest, in two short
			// reads, so the writer gets one back.
			got := make([]byte, 3)
			if n, err := io.ReadFull(o, got); n != 3 || err != nil || string(got) != string(want[:3]) {
				t.Fatalf("read %q, %v; want %q", got[:n], err, want[:3])
			}
			want = want[3:]
			if n, err := io.ReadFull(o, make([]byte, len("chunk 0\n")-3)); err != nil {
				t.Fatalf("read %d: %v", n, err)
			}
			want = want[len("chunk 0\n")-3:]
		}
		b, ok := o.buffer()
		if !ok {
			t.Fatal("no buffer")
		}
		b = append(b, "chunk "...)
		b = append(b, byte('0'+i%10), '\n')
		want = append(want, b...)
		if !o.send(b) {
			t.Fatal("send refused")
		}
	}
	got, err := io.ReadAll(struct{ io.Reader }{readUntil(o, len(want))})
	if err != nil || string(got) != string(want) {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	if err := o.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing waiting: %v, want the deadline", err)
	}
	_ = o.SetReadDeadline(time.Time{})
	b, _ := o.buffer()
	o.send(append(b, "last\n"...))
	o.end()
	if got, err := io.ReadAll(o); err != nil || string(got) != "last\n" {
		t.Fatalf("read %q, %v; want the last chunk and EOF", got, err)
	}
	if _, err := o.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read after EOF: %v", err)
	}

	o = newOutput()
	done := make(chan error, 1)
	go func() {
		_, err := o.Read(make([]byte, 8))
		done <- err
	}()
	for o.mu.TryLock() { // until the Read holds the reader's lock: it is waiting for a chunk
		o.mu.Unlock()
		runtime.Gosched()
	}
	_ = o.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("waiting read at Close: %v, want ErrClosed", err)
	}
	for range 2 * outputChunks {
		if b, ok := o.buffer(); ok && o.send(b) {
			t.Fatal("send accepted after Close")
		}
	}
}

// readUntil reads n bytes of o, then reports EOF.
func readUntil(o *output, n int) io.Reader { return io.LimitReader(o, int64(n)) }
