//go:build !linux

package spool

import "os"

// recordWriter appends a staging record to its file with one write(2),
// header and data copied into one reused buffer.
type recordWriter struct {
	f   *os.File
	buf []byte
}

func (r *recordWriter) init(f *os.File) error {
	r.f = f
	return nil
}

// write appends the record of p at stream offset off and returns how many
// bytes of it reached the file.
func (r *recordWriter) write(off int64, p []byte) (int, error) {
	var hdr [stageRecHeader]byte
	r.buf = append(append(r.buf[:0], hdr[:]...), p...)
	putStageHeader(r.buf, off, p)
	return r.f.Write(r.buf)
}
