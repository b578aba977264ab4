package native

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// outputChunks bounds the formatted output waiting for the reader: that
// many chunks of up to about flushAt bytes each (about as much as the pipe
// the engine used to write into held). A writer that finds every chunk
// waiting blocks until the reader takes one, as a full pipe blocked it.
const outputChunks = 6

// output is Trace.Output: the formatted lines handed over in memory, in
// chunks, from the trace's goroutine (the only writer) to the caller (the
// reader). Unlike a pipe, no byte crosses the kernel: the reader copies
// each byte once, out of the chunk the formatter wrote it into. Read and
// SetReadDeadline behave as on an os.File pipe: EOF once the writer ended
// and everything was read, os.ErrDeadlineExceeded at the deadline when no
// byte is waiting, an error wrapping os.ErrClosed after Close.
type output struct {
	full   chan []byte   // chunks written, in order; closed at the end
	free   chan []byte   // chunks read, for the writer to reuse
	closed chan struct{} // closed by Close
	made   int           // chunks allocated (writer)

	mu     sync.Mutex // the reader's side
	cur    []byte     // what is left of the chunk being read
	curBuf []byte     // that chunk, whole, to give back
	eof    bool

	dmu      sync.Mutex // not held while a Read waits
	deadline time.Time

	closeOnce sync.Once
	endOnce   sync.Once
}

func newOutput() *output {
	return &output{
		full:   make(chan []byte, outputChunks),
		free:   make(chan []byte, outputChunks),
		closed: make(chan struct{}),
	}
}

// buffer returns an empty chunk for the writer: a reused one, a new one
// while fewer than outputChunks exist, or else the first one the reader
// gives back. ok is false when the reader closed the output: nothing
// written will be read.
func (o *output) buffer() (b []byte, ok bool) {
	select {
	case b := <-o.free:
		return b[:0], true
	default:
	}
	if o.made < outputChunks {
		o.made++
		return make([]byte, 0, flushAt+4096), true
	}
	select {
	case b := <-o.free:
		return b[:0], true
	case <-o.closed:
		return nil, false
	}
}

// send hands the chunk b to the reader; it blocks while the reader has
// outputChunks waiting, and is false (b dropped) once the reader closed
// the output.
func (o *output) send(b []byte) bool {
	select {
	case <-o.closed:
		return false
	default:
	}
	select {
	case o.full <- b:
		return true
	case <-o.closed:
		return false
	}
}

// end marks the end of the output: once what was sent is read, Read
// returns io.EOF. The writer sends nothing after it.
func (o *output) end() { o.endOnce.Do(func() { close(o.full) }) }

func (o *output) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.eof {
		return 0, io.EOF
	}
	if len(o.cur) == 0 {
		b, err := o.next()
		if err != nil {
			return 0, err
		}
		o.cur, o.curBuf = b, b
	}
	n := copy(p, o.cur)
	if o.cur = o.cur[n:]; len(o.cur) == 0 {
		// Read whole: the writer may reuse it at once.
		select {
		case o.free <- o.curBuf:
		default:
		}
		o.cur, o.curBuf = nil, nil
	}
	return n, nil
}

// next waits for the next chunk, until the deadline.
func (o *output) next() ([]byte, error) {
	select {
	case <-o.closed:
		return nil, fmt.Errorf("reading native trace output: %w", os.ErrClosed)
	default:
	}
	o.dmu.Lock()
	deadline := o.deadline
	o.dmu.Unlock()
	var expire <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			select {
			case b, ok := <-o.full:
				return o.got(b, ok)
			default:
				return nil, os.ErrDeadlineExceeded
			}
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		expire = tm.C
	}
	select {
	case b, ok := <-o.full:
		return o.got(b, ok)
	case <-expire:
		return nil, os.ErrDeadlineExceeded
	case <-o.closed:
		return nil, fmt.Errorf("reading native trace output: %w", os.ErrClosed)
	}
}

func (o *output) got(b []byte, ok bool) ([]byte, error) {
	if !ok {
		o.eof = true
		return nil, io.EOF
	}
	return b, nil
}

// SetReadDeadline bounds the next Reads: a Read that reaches t with no
// byte waiting returns os.ErrDeadlineExceeded. The zero time clears it.
// It may be called while a Read waits; the waiting Read keeps the deadline
// it started with.
func (o *output) SetReadDeadline(t time.Time) error {
	o.dmu.Lock()
	o.deadline = t
	o.dmu.Unlock()
	return nil
}

// Close closes the output for the reader: a Read returns an error wrapping
// os.ErrClosed, and the writer drops what it writes from then on.
func (o *output) Close() error {
	o.closeOnce.Do(func() { close(o.closed) })
	return nil
}
