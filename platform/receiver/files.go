package receiver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafeDir is wrapped by New's error for a directory that another user
// could write to: one not owned by the user the receiver runs as, or one
// its group or others may write.
var ErrUnsafeDir = errors.New("directory open to other users")

// ErrUnsafeFile is wrapped by the errors about a file in the directory that
// the receiver refuses to open or write: a symbolic link, something other
// than a regular file, a file of another user or with another hard link, a
// file in the way of a new trace that holds bytes, or a trace's file
// replaced while the receiver had it closed.
var ErrUnsafeFile = errors.New("unsafe file")

type unsafeError struct {
	kind error
	msg  string
}

func (e *unsafeError) Error() string        { return e.msg }
func (e *unsafeError) Is(target error) bool { return target == e.kind }

func unsafeDir(format string, a ...any) error {
	return &unsafeError{kind: ErrUnsafeDir, msg: fmt.Sprintf(format, a...)}
}

func unsafeFile(name, format string, a ...any) error {
	return &unsafeError{kind: ErrUnsafeFile, msg: name + ": " + fmt.Sprintf(format, a...)}
}

// openDir creates path (0700, with its missing parents) when it does not
// exist, opens it and checks that no other user can write to it: it must
// belong to the effective user and have no group or other write bit. The
// path itself may be a symbolic link the operator chose; what it names is
// checked, through the descriptor every later file is opened relative to.
func openDir(path string) (*os.File, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("creating directory: %w", err)
	}
	fd, err := openRetry(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening directory: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("checking directory: %w", err)
	}
	if err := checkDir(&st, os.Geteuid()); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("checking directory: %w", err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkDir refuses a directory another user than uid could write to.
func checkDir(st *unix.Stat_t, uid int) error {
	perm := st.Mode & 0o7777
	if int(st.Uid) != uid {
		return unsafeDir("it belongs to uid %d, and the receiver runs as uid %d: it writes only to a directory of its own user (chown it, or use another directory)", st.Uid, uid)
	}
	who := ""
	switch {
	case perm&0o022 == 0o022:
		who = "its group and others"
	case perm&0o020 != 0:
		who = "its group"
	case perm&0o002 != 0:
		who = "others"
	default:
		return nil
	}
	return unsafeDir("writable by %s (mode %04o): the receiver writes only to a directory no other user can write (chmod go-w it, or use another directory)", who, perm)
}

// fileID tells one file from another: a name in the directory that names
// another file than before was replaced.
type fileID struct{ dev, ino uint64 }

// openAt opens name in directory dir with flag, never through a symbolic
// link (O_NOFOLLOW: a link there is an error, not followed), without
// blocking on a FIFO, and only if what it opened is a regular file of the
// effective user with no other hard link (so writing it cannot write to a
// file elsewhere). Errors about what is there wrap ErrUnsafeFile; an absent
// file gives one wrapping fs.ErrNotExist, an existing one opened with
// O_EXCL one wrapping fs.ErrExist.
func openAt(dir *os.File, name string, flag int) (*os.File, fileID, int64, error) {
	fd, err := openRetry(int(dir.Fd()), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, fileID{}, 0, unsafeFile(name, "a symbolic link: the receiver never follows one in its directory")
	}
	if err != nil {
		return nil, fileID{}, 0, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fileID{}, 0, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := checkFile(name, &st); err != nil {
		unix.Close(fd)
		return nil, fileID{}, 0, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fileID{}, 0, &fs.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), fileID{uint64(st.Dev), st.Ino}, st.Size, nil
}

// checkFile refuses a file the receiver must not write: anything but a
// regular file, a file of another user, one with another hard link.
func checkFile(name string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return unsafeFile(name, "not a regular file")
	case int(st.Uid) != os.Geteuid():
		return unsafeFile(name, "it belongs to uid %d, not to uid %d running the receiver", st.Uid, os.Geteuid())
	case st.Nlink != 1:
		return unsafeFile(name, "it has %d hard links: writing it would write a file elsewhere too", st.Nlink)
	}
	return nil
}

// statAt reports whether name exists in dir, without following a link;
// anything there but a regular file is an error wrapping ErrUnsafeFile.
func statAt(dir *os.File, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, &fs.PathError{Op: "stat", Path: name, Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return false, unsafeFile(name, "a symbolic link: the receiver never follows one in its directory")
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return false, unsafeFile(name, "not a regular file")
	}
	return true, nil
}

// createAt creates name in dir as a new, empty file (O_CREAT|O_EXCL, never
// through a link). A file already there is taken over only when it is an
// empty regular file of our own with no other link: the .out a receiver
// killed between creating a trace's two files leaves. Nothing in it can be
// lost, so nothing is truncated. Anything else is refused and left as it
// is.
func createAt(dir *os.File, name string) (*os.File, fileID, error) {
	f, id, _, err := openAt(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL)
	if !errors.Is(err, fs.ErrExist) {
		return f, id, err
	}
	f, id, size, err := openAt(dir, name, unix.O_RDWR)
	if err != nil {
		return nil, fileID{}, err
	}
	if size != 0 {
		f.Close()
		return nil, fileID{}, unsafeFile(name, "already there with %d bytes the receiver never acknowledged: it is left as it is (move it away to receive this trace)", size)
	}
	return f, id, nil
}

// writeFileAtomic writes dir/name through a new temporary file (O_EXCL,
// never through a link), fsynced, then renamed over name and the directory
// fsynced: the file is either absent or complete. The rename replaces
// whatever name was (a link included) without writing through it.
func writeFileAtomic(dir *os.File, name string, data []byte) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := "." + name + ".tmp" + hex.EncodeToString(rnd[:])
	f, _, _, err := openAt(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			unix.Unlinkat(int(dir.Fd()), tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(int(dir.Fd()), tmp, int(dir.Fd()), name); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
	}
	done = true
	return dir.Sync()
}

// openRetry is openat, retried on EINTR.
func openRetry(dirfd int, name string, flag int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flag, mode)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// ErrDirBusy is wrapped by Lock's error when another process holds the
// directory.
var ErrDirBusy = errors.New("directory in use")

// lockName is the file in the directory that the running receiver holds an
// exclusive flock on; it holds the holder's PID and a newline (the format
// of the endpoint's data-dir lock).
const lockName = "lock"

type busyError struct{ path, pid string }

func (e *busyError) Error() string {
	return fmt.Sprintf("held by another process (pid %s, lock file %s): one receiver per directory; stop that one or give this one another directory", e.pid, e.path)
}
func (e *busyError) Is(target error) bool { return target == ErrDirBusy }

// lockDir takes an exclusive, non-blocking flock on dir/lock, opened like
// every trace file (relative to dir, never through a link, a regular file
// of ours with one link; created with O_EXCL), and writes this process's
// PID into it. A lock file already there is rewritten only when it holds
// nothing but a PID (what an earlier receiver left); anything else is
// refused and left as it is.
func lockDir(dir *os.File) (*os.File, error) {
	f, _, size, err := openAt(dir, lockName, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, _, size, err = openAt(dir, lockName, unix.O_RDWR)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, ok := readPID(f)
			if !ok {
				pid = "unknown (it has not written its PID yet)"
			}
			return nil, &busyError{path: f.Name(), pid: pid}
		}
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	if !created && size != 0 {
		if _, ok := readPID(f); !ok {
			f.Close()
			return nil, unsafeFile(lockName, "already there with %d bytes that are not a PID: it is left as it is (move it away to run the receiver here)", size)
		}
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the PID to %s: %w", f.Name(), err)
	}
	return f, nil
}

// readPID reads the PID in a lock file: decimal digits and a newline.
func readPID(f *os.File) (string, bool) {
	b := make([]byte, 24)
	n, _ := f.ReadAt(b, 0)
	s := strings.TrimSuffix(string(b[:n]), "\n")
	if v, err := strconv.Atoi(s); err != nil || v <= 0 || n == len(b) || strconv.Itoa(v) != s {
		return "", false
	}
	return s, true
}
