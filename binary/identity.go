package binary

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped for a path that names something other than a
// regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrChanged is wrapped by Identity.Check when the path names another file
// than the one that was checked, or a file that was modified since.
var ErrChanged = errors.New("binary changed since it was checked")

// Identity identifies one version of one file: its device and inode (which
// file), size and modification time (which content, as far as a stat can
// tell). Uprobes attach to an inode, so (Dev, Ino) is what a trace probes.
type Identity struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
}

// identityOf returns the identity of fi, from a stat on Linux.
func identityOf(fi fs.FileInfo) Identity {
	id := Identity{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// Stat returns the identity of the file path names now (links followed, as
// the tracers follow them).
func Stat(path string) (Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Identity{}, err
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, ErrNotRegular
	}
	return identityOf(fi), nil
}

// String describes id for logs and error messages.
func (id Identity) String() string {
	return fmt.Sprintf("device %d inode %d, %d bytes, mtime %d", id.Dev, id.Ino, id.Size, id.MtimeNs)
}

// Check reports whether path still names the file id identifies, unchanged:
// nil if so, an error wrapping ErrChanged if it names another file (or the
// same inode with another size or mtime), or the stat error (a removed file:
// fs.ErrNotExist) otherwise. A removed or replaced file is not what the
// check saw, so callers treat every error alike.
func (id Identity) Check(path string) error {
	now, err := Stat(path)
	if err != nil {
		return fmt.Errorf("checking %s: %w: %w", path, ErrChanged, err)
	}
	if now != id {
		return fmt.Errorf("checking %s: %w: it was %s, it is now %s", path, ErrChanged, id, now)
	}
	return nil
}
