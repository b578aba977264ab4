package spool

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// The staging file keeps the output a Writer holds but has not yet cut
// into a chunk (at most about one chunk plus one write, waiting for a
// newline or a flush), so that a crash loses nothing a Write returned for:
// the staged bytes past the spool's last chunk become the next Writer's
// first bytes, or (RecoverStaged) the spool's last chunks.
//
// Only bytes that stay uncut are written to it. A Write first cuts and
// appends the chunks the held bytes make, then appends to the staging file
// one record holding the bytes of this Write left over (none when all of
// them went into chunks). So every byte from the spool's end on is in a
// record once Write returned; a byte in no record is in a chunk, or was
// never promised (the Write did not return).
//
// Format (version 2): the 8-byte magic "LESTREC2" (it differs from version
// 1's in four bytes, so that no damaged byte turns one into the other),
// then records
//
//	stream offset u64 | length u32 | CRC u32 | data
//
// where the offset is that of the record's first byte in the Writer's
// stream (the spool's Bytes counts the bytes before it that are in chunks)
// and the CRC-32C covers the 12 bytes before it and the data. Each record
// is written with one system call (a long one with writev(2) on Linux,
// from the Writer's buffer). Records come in
// increasing, non-overlapping offsets; the bytes between two records are
// in chunks. When the file grows past stageCompactAt it is replaced (a
// temporary file written, renamed over it) by one holding the bytes not
// yet in a chunk in one record.
//
// Recovery (readStaged, with the spool's Bytes) walks the records and
// returns the bytes from the spool's end on. A last record cut short or
// failing its CRC (the process died in the middle of writing it: that
// Write never returned) is ignored. Damage before the last record is an
// error, returned with the bytes before the damage; bytes from the spool's
// end on that no record holds although a later record exists (the spool
// lost chunks the staging file took as cut) are an error without bytes:
// never a byte that was not written. A file of version 1 (magic "LESTAGE1", the
// stream offset of its first byte u64, then every byte written), left by
// an endpoint that crashed before an upgrade, is read too.
const (
	stageName       = "staged"
	stageMagic      = "LESTREC2"
	stageMagicV1    = "LESTAGE1"
	stageHeader     = len(stageMagic)
	stageHeaderV1   = 16
	stageRecHeader  = 16 // offset u64, length u32, crc u32
	maxStageRecord  = math.MaxUint32
	maxStageOffset  = maxNumber
	stageRecLenOff  = 8
	stageRecCRCOff  = 12
	stageRecCRCSpan = 12 // the CRC covers offset and length, then the data
	// stageCopyMax is the longest record data that is copied into one
	// buffer with its header to be written (elsewhere than on Linux, all
	// are); a longer one is written with writev, not copied.
	stageCopyMax = 4 << 10
)

// stageCompactAt is the file size at which the staging file is replaced by
// one holding only the bytes not yet in a chunk; a variable so that tests
// can cross it with little data.
var stageCompactAt int64 = 8 << 20

type stage struct {
	dir  string
	f    *os.File
	size int64 // bytes in the file after the magic
	rec  recordWriter
}

// putStageHeader fills hdr[:stageRecHeader] with the header of a record of
// data at stream offset off.
func putStageHeader(hdr []byte, off int64, data []byte) {
	le.PutUint64(hdr[0:], uint64(off))
	le.PutUint32(hdr[stageRecLenOff:], uint32(len(data)))
	c := crc32.Update(0, castagnoli, hdr[:stageRecCRCSpan])
	le.PutUint32(hdr[stageRecCRCOff:], crc32.Update(c, castagnoli, data))
}

// createStage replaces dir's staging file with one whose only record holds
// pending, the bytes from stream offset base on that are not in a chunk.
// The temporary file is written and then renamed, so the file at the path
// is always a complete one; the descriptor kept is the renamed file's.
func createStage(dir string, base int64, pending []byte) (*stage, error) {
	if uint64(len(pending)) > maxStageRecord {
		return nil, fmt.Errorf("staging %d bytes: more than one record holds", len(pending))
	}
	path := filepath.Join(dir, stageName)
	tmp := path + ".tmp"
	b := make([]byte, stageHeader, stageHeader+stageRecHeader+len(pending))
	copy(b, stageMagic)
	if len(pending) > 0 {
		b = b[:stageHeader+stageRecHeader]
		putStageHeader(b[stageHeader:], base, pending)
		b = append(b, pending...)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing staging file: %w", err)
	}
	st := &stage{dir: dir, f: f, size: int64(len(b) - stageHeader)}
	if _, err = f.Write(b); err == nil {
		err = st.rec.init(f)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("writing staging file: %w", err)
	}
	// Nothing fails after the rename: a caller that keeps its old file on
	// an error keeps the one at the path.
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("replacing staging file: %w", err)
	}
	return st, nil
}

// write appends a record of p, the bytes from stream offset off on. After
// an error the file may end in a partial record: the caller stops using it.
func (st *stage) write(off int64, p []byte) error {
	if uint64(len(p)) > maxStageRecord {
		return fmt.Errorf("staging %d bytes: more than one record holds", len(p))
	}
	n, err := st.rec.write(off, p)
	st.size += int64(n)
	return err
}

// due tells whether the file has grown enough to be compacted.
func (st *stage) due() bool { return st.size >= stageCompactAt }

// compact replaces the file by one holding only pending, the bytes not yet
// in a chunk, which start at stream offset committed. On an error the old
// file is kept and still valid.
func (st *stage) compact(committed int64, pending []byte) (*stage, error) {
	next, err := createStage(st.dir, committed, pending)
	if err != nil {
		return st, err
	}
	st.f.Close()
	return next, nil
}

// close closes the file, leaving it for a restarted pump or the next start.
func (st *stage) close() { st.f.Close() }

// remove deletes the staging file: everything is in chunks, or dropped.
func (st *stage) remove() error {
	st.f.Close()
	return removeStage(st.dir)
}

// removeStage deletes dir's staging file, if any.
func removeStage(dir string) error {
	err := os.Remove(filepath.Join(dir, stageName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// readStaged returns the bytes staged in dir from stream offset committed
// (the spool's Bytes) on: the output a crashed endpoint had read but not
// cut into a chunk. No file means nothing was staged. With an error, the
// bytes returned (possibly none) are the part before the damage, still
// the stream's bytes from committed on.
func readStaged(dir string, committed int64) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, stageName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading staging file: %w", err)
	}
	return decodeStaged(b, committed)
}

// decodeStaged is readStaged on the staging file's bytes b.
func decodeStaged(b []byte, committed int64) ([]byte, error) {
	if committed < 0 {
		return nil, fmt.Errorf("staging file read from stream offset %d", committed)
	}
	if len(b) >= stageHeaderV1 && string(b[:len(stageMagicV1)]) == stageMagicV1 {
		return decodeStagedV1(b, committed)
	}
	if len(b) < stageHeader || string(b[:stageHeader]) != stageMagic {
		return nil, fmt.Errorf("staging file has no valid header (%d bytes)", len(b))
	}
	var out []byte
	next := committed // the stream offset of the next byte wanted
	end := int64(0)   // where the last record ended
	for pos := stageHeader; pos < len(b); {
		rest := b[pos:]
		if len(rest) < stageRecHeader {
			break // the last record's header cut short: its Write never returned
		}
		off := int64(le.Uint64(rest))
		if uint64(le.Uint32(rest[stageRecLenOff:])) > uint64(len(rest)-stageRecHeader) {
			break // cut short
		}
		n := int(le.Uint32(rest[stageRecLenOff:]))
		data := rest[stageRecHeader : stageRecHeader+n]
		c := crc32.Update(0, castagnoli, rest[:stageRecCRCSpan])
		if crc32.Update(c, castagnoli, data) != le.Uint32(rest[stageRecCRCOff:]) {
			if stageRecHeader+n == len(rest) {
				break // the last record, torn
			}
			return out, fmt.Errorf("staging file damaged at byte %d: %d bytes after it dropped", pos, len(rest))
		}
		if off < end || off > maxStageOffset-int64(n) {
			return out, fmt.Errorf("staging file damaged at byte %d: a record at stream offset %d after one ending at %d", pos, off, end)
		}
		end = off + int64(n)
		pos += stageRecHeader + n
		switch {
		case end <= next:
			// In chunks already (or taken from an earlier record: none
			// overlap).
		case off > next:
			return nil, fmt.Errorf("staging file holds stream bytes %d..%d but not %d..%d (the spool ends at %d)", off, end, next, off, committed)
		default:
			out = append(out, data[next-off:]...)
			next = end
		}
	}
	return out, nil
}

// decodeStagedV1 reads a staging file of version 1: magic, the stream
// offset of the first byte, every byte written.
func decodeStagedV1(b []byte, committed int64) ([]byte, error) {
	base := int64(le.Uint64(b[len(stageMagicV1):]))
	data := b[stageHeaderV1:]
	if base < 0 || base > maxStageOffset {
		return nil, fmt.Errorf("staging file (version 1) starts at stream offset %d", base)
	}
	off := committed - base
	if off < 0 || off > int64(len(data)) {
		return nil, fmt.Errorf("staging file (version 1) covers bytes %d..%d, the spool ends at %d", base, base+int64(len(data)), committed)
	}
	return append([]byte(nil), data[off:]...), nil
}
