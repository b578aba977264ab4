package binary

import (
	"debug/buildinfo"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// File is a binary opened once, for one start: the preflight, the native
// engine's planning and its probes all read the file this descriptor
// holds, so a path swapped between two steps changes nothing they see.
// Close it when done.
type File struct {
	f   *os.File
	id  Identity
	key cacheKey // id and the change time: what the symbol cache goes by
}

// Open opens the regular file path names (links followed, as the tracers
// follow them) for reading, without ever opening anything else: the path is
// first opened O_PATH (which opens no device and waits on no FIFO), checked
// to be a regular file on that descriptor, and only then reopened for
// reading through /proc/self/fd, which names the same inode whatever the
// path names by then. The identity is the opened file's.
func Open(path string) (*File, error) {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, ErrNotRegular
	}
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(pfd), os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unwrapPath(err)}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "stat", Path: path, Err: unwrapPath(err)}
	}
	id := identityOf(fi)
	if !fi.Mode().IsRegular() || id.Dev != uint64(st.Dev) || id.Ino != st.Ino {
		f.Close()
		return nil, fmt.Errorf("reopening %s: %w", path, ErrChanged)
	}
	key := cacheKey{Identity: id}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.CtimeNs = st.Ctim.Nano()
	}
	return &File{f: f, id: id, key: key}, nil
}

// unwrapPath returns the cause of a *fs.PathError (whose path, a
// /proc/self/fd name, means nothing to a reader), or err.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// Identity is the identity of the opened file, taken when it was opened.
func (f *File) Identity() Identity { return f.id }

// ReadAt reads from the opened file.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// ProcPath is a path naming the opened file for as long as it is open, in
// this process only: /proc/self/fd/N. The kernel resolves it to the inode
// this descriptor holds, so a uprobe attached through it goes into the
// file that was read, not into whatever the original path names now.
func (f *File) ProcPath() string { return "/proc/self/fd/" + strconv.Itoa(int(f.f.Fd())) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadFile reads the symbols of the opened file (see Read), and the Go
// toolchain's version when it is a Go binary whose build information can
// be read.
func ReadFile(f *File) (*Symbols, error) {
	s, err := Read(f, f.id.Size)
	if err != nil {
		return nil, err
	}
	if s.Go {
		s.GoVersion = goVersion(f)
	}
	return s, nil
}

// goVersion is the version of the Go toolchain that built the binary r
// holds, or "" when its build information cannot be read (stripped,
// corrupted, too old).
func goVersion(f *File) (v string) {
	defer func() {
		if recover() != nil {
			v = ""
		}
	}()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return ""
	}
	return bi.GoVersion
}
