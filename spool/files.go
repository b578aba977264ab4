package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names inside a spool directory.
const (
	metaFile      = "meta"
	metaTmpFile   = "meta.tmp"
	stateFileName = "state"
	segmentExt    = ".seg"
	segmentDigits = 20
)

// segmentName is the file name of the segment starting at chunk first.
func segmentName(first int64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, first, segmentExt)
}

// parseSegmentName returns the first chunk number a segment file name
// carries.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > maxNumber {
		return 0, false
	}
	return int64(n), true
}

// writeFileAtomic replaces dir/name with data: it writes name.tmp, fsyncs
// it, renames it over name and fsyncs the directory, so that after a
// crash the file holds either the old or the new bytes.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making file creations, renames and
// removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
