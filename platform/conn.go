package platform

import (
	"context"
	"io"
	"net"
	"sync"
)

// bodyConn is a plain TCP connection to the platform that writes a request
// body straight from its buffer. net/http hands a body of known length to
// the connection as an io.LimitedReader; a *net.TCPConn copies that through
// a 32 KiB buffer it allocates for every request (net.genericReadFrom) and
// writes it 32 KiB at a time. A chunk body is about 68 KiB, sent many times
// a second while a trace prints, so that was an allocation and two or three
// write(2)s per chunk. bodyConn writes the body's bytes in one Write, and
// copies any other reader through a pooled buffer. TLS connections are
// wrapped by crypto/tls, which writes its own records, and are not helped.
type bodyConn struct {
	*net.TCPConn
}

// dialBodyConn dials with d and wraps TCP connections in bodyConn.
func dialBodyConn(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			return bodyConn{tc}, nil
		}
		return c, nil
	}
}

// copyBufs holds buffers for bodies that are not a bodyReader.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom implements io.ReaderFrom, which net/http's connection writer
// uses for request bodies.
func (c bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if br, ok := lr.R.(*bodyReader); ok {
			n, err := br.writeTo(c.TCPConn, lr.N)
			lr.N -= n
			return n, err
		}
	}
	if br, ok := r.(*bodyReader); ok {
		return br.writeTo(c.TCPConn, int64(br.Len()))
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{c.TCPConn}, r, *buf)
}

// writerOnly hides a writer's ReadFrom, so that io.CopyBuffer uses the
// buffer it is given.
type writerOnly struct{ io.Writer }

// writeTo writes at most limit of the reader's unread bytes to w in one
// Write and advances the reader by what was written.
func (r *bodyReader) writeTo(w io.Writer, limit int64) (int64, error) {
	b := *r.s.buf
	off := r.Size() - int64(r.Len())
	n := min(int64(r.Len()), limit)
	if n <= 0 {
		return 0, nil
	}
	m, err := w.Write(b[off : off+n])
	_, _ = r.Seek(int64(m), io.SeekCurrent)
	return int64(m), err
}
