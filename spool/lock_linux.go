//go:build linux

package spool

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// lockFile takes a POSIX write lock on f, refusing a spool that another
// process holds open. POSIX locks belong to the process: a second Open of
// the same spool inside one process is not detected.
func lockFile(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return ErrLocked
	}
	return err
}
