package tracer

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stdoutPipe is the read end of the stdout pipe; it closes itself at the
// first error, and keeps answering io.EOF after EOF.
//
// The pipe is deliberately kept out of Go's network poller: a pipe in the
// poller's epoll set wakes the poller's thread on every write of the
// tracer (edge-triggered, also while nobody reads), and bpftrace writes a
// line per event, so the endpoint would pay a wake-up per event even while
// it lets output gather. Read instead waits in ppoll(2) on the pipe and on
// an eventfd that close writes to, so CloseStdout still ends a pending
// Read, and read deadlines are ppoll's timeout. A Read holds an OS thread
// while it waits, as any blocking system call does.
type stdoutPipe struct {
	f        *os.File // blocking for the runtime (not in the poller), O_NONBLOCK for read(2)
	rc       syscall.RawConn
	wake     int // eventfd, written by close
	capacity int // bytes, 0 if unknown

	deadline atomic.Int64 // UnixNano of the read deadline, 0 for none
	closing  atomic.Bool
	sawEOF   atomic.Bool
	readMu   sync.Mutex // held by a Read in progress; close waits for it to free wake
	once     sync.Once
	err      error
}

// openStdoutPipe creates the stdout pipe: the reader of its read end (kept
// out of the poller, holding StdoutPipeSize when the kernel allows it) and
// its write end for the tracer.
func openStdoutPipe() (*stdoutPipe, *os.File, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	// Blocking descriptors: os.NewFile leaves them out of the poller.
	r, w := os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1")
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		r.Close()
		w.Close()
		return nil, nil, err
	}
	err = unix.SetNonblock(p[0], true) // read(2) after ppoll(2) never blocks
	var rc syscall.RawConn
	if err == nil {
		rc, err = r.SyscallConn()
	}
	if err != nil {
		r.Close()
		w.Close()
		unix.Close(wake)
		return nil, nil, err
	}
	return &stdoutPipe{f: r, rc: rc, wake: wake, capacity: growPipe(r)}, w, nil
}

func (s *stdoutPipe) Read(b []byte) (int, error) {
	if s.sawEOF.Load() {
		return 0, io.EOF
	}
	n, err := s.read(b)
	if err == io.EOF {
		s.sawEOF.Store(true)
	}
	if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		_ = s.close()
	}
	return n, err
}

func (s *stdoutPipe) read(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.closing.Load() {
		return 0, s.closedErr()
	}
	// Control holds a reference to the descriptor: a concurrent Close of f
	// closes it only once the wait below returned.
	cerr := s.rc.Control(func(fd uintptr) { n, err = s.wait(int(fd), b) })
	if cerr != nil {
		return 0, &os.PathError{Op: "read", Path: s.f.Name(), Err: cerr}
	}
	return n, err
}

// wait polls the pipe (and wake) until it can read, then reads.
func (s *stdoutPipe) wait(fd int, b []byte) (int, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(s.wake), Events: unix.POLLIN}}
	for {
		if s.closing.Load() {
			return 0, s.closedErr()
		}
		var ts *unix.Timespec
		if d := s.deadline.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := unix.NsecToTimespec(left.Nanoseconds())
			ts = &t
		}
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Ppoll(fds, ts, nil); err != nil {
			if err == unix.EINTR {
				continue
			}
			return 0, &os.PathError{Op: "poll", Path: s.f.Name(), Err: err}
		}
		if fds[1].Revents != 0 {
			return 0, s.closedErr()
		}
		if fds[0].Revents == 0 {
			continue // the timeout: the deadline is checked above
		}
		n, err := unix.Read(fd, b)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: s.f.Name(), Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (s *stdoutPipe) closedErr() error {
	return &os.PathError{Op: "read", Path: s.f.Name(), Err: os.ErrClosed}
}

// SetReadDeadline bounds the next Reads: a Read that reaches t returns an
// error wrapping os.ErrDeadlineExceeded and leaves the pipe open. The zero
// time clears the deadline. A Read already waiting keeps the deadline it
// started with.
func (s *stdoutPipe) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		s.deadline.Store(0)
	} else {
		s.deadline.Store(max(t.UnixNano(), 1))
	}
	return nil
}

// close ends a pending Read (which returns an error wrapping
// os.ErrClosed) and closes the pipe and the eventfd.
func (s *stdoutPipe) close() error {
	s.once.Do(func() {
		s.closing.Store(true)
		one := [8]byte{1} // any non-zero count wakes the eventfd's poller
		_, _ = unix.Write(s.wake, one[:])
		s.err = s.f.Close()
		s.readMu.Lock() // the pending Read has returned: wake is free
		_ = unix.Close(s.wake)
		s.readMu.Unlock()
	})
	return s.err
}
