package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockFileName is the file in the data directory that the running endpoint
// holds an exclusive flock on; it contains the holder's PID.
const lockFileName = "lock"

// errDataDirBusy is wrapped by lockDataDir when another process holds the
// data directory.
var errDataDirBusy = errors.New("data directory in use")

// dataDirLock is a held lock on a data directory. Closing it releases the
// lock (so does the process's death, even by SIGKILL: the kernel drops a
// flock with its last descriptor).
type dataDirLock struct{ f *os.File }

// lockDataDir creates dir (0700) if needed and takes an exclusive,
// non-blocking flock on dir/lock (created 0600, never through a symbolic
// link), then writes this process's PID into it. It is the first thing
// serve does: nothing else touches the data directory, the database or the
// cgroups before it succeeds. A directory held by another process gives an
// error wrapping errDataDirBusy that names the directory and the holder's
// PID.
func lockDataDir(dir string) (*dataDirLock, error) {
	return lockDir(dir, "lambda.data-dir", "lambda-endpoint")
}

// lockDir is lockDataDir for a directory named by option (in messages) and
// held by a process described as holder.
func lockDir(dir, option, holder string) (*dataDirLock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", option, dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", option, err)
	}
	path := filepath.Join(abs, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening data-dir lock: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		pid := "unknown (it has not written its PID yet)"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if n, perr := strconv.Atoi(string(bytes.TrimSpace(b))); perr == nil && n > 0 {
				pid = strconv.Itoa(n)
			}
		}
		return nil, fmt.Errorf("%w: %s is held by another %s (pid %s, lock file %s): one per %s; stop that one or give this one another %s",
			errDataDirBusy, abs, holder, pid, path, option, option)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing pid to %s: %w", path, err)
	}
	return &dataDirLock{f: f}, nil
}

// flock takes an exclusive non-blocking lock, retrying on EINTR.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		return err
	}
	return f.Sync()
}

// Close releases the lock. The file stays: removing it would let a third
// process lock a new file while a second still holds the old one.
func (l *dataDirLock) Close() error { return l.f.Close() }
