//go:build linux

package spool

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// recordWriter appends a staging record to its file with one system call:
// a short record copied into a reused buffer and written (a writev costs
// more than copying a few KiB), a longer one with writev(2), the header
// from its own array and the data from the caller's buffer, not copied.
type recordWriter struct {
	f   *os.File
	buf []byte // a short record
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // rc.Write's callback, bound once
	hdr [stageRecHeader]byte
	iov [2][]byte
	n   int // bytes written by the last call of fn
	err error
}

func (r *recordWriter) init(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	r.f, r.rc, r.fn = f, rc, r.writev
	return nil
}

// write appends the record of p at stream offset off and returns how many
// bytes of it reached the file.
func (r *recordWriter) write(off int64, p []byte) (int, error) {
	if len(p) <= stageCopyMax {
		r.buf = append(append(r.buf[:0], r.hdr[:]...), p...)
		putStageHeader(r.buf, off, p)
		return r.f.Write(r.buf)
	}
	putStageHeader(r.hdr[:], off, p)
	r.iov[0], r.iov[1] = r.hdr[:], p
	r.n, r.err = 0, nil
	if err := r.rc.Write(r.fn); err != nil {
		return 0, err
	}
	r.iov[1] = nil // do not keep the caller's buffer
	return r.n, r.err
}

// writev writes r.iov whole (a regular file takes a writev whole unless
// the disk is full or a signal interrupted it).
func (r *recordWriter) writev(fd uintptr) bool {
	iov := r.iov[:]
	for len(iov) > 0 {
		n, err := unix.Writev(int(fd), iov)
		if n > 0 {
			r.n += n
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.err = err
			return true
		}
		if n == 0 {
			r.err = io.ErrShortWrite
			return true
		}
		for n > 0 && len(iov) > 0 {
			if k := min(n, len(iov[0])); k < len(iov[0]) {
				iov[0] = iov[0][k:]
				n = 0
			} else {
				n -= k
				iov = iov[1:]
			}
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return true
}
