package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// segment is one open segment file. All but the last of a spool's
// segments are complete; the last one is appended to.
type segment struct {
	first int64 // number of the first chunk
	path  string
	f     *os.File
	size  int64 // bytes of header and complete records
}

// entry locates one chunk's record inside its segment: 8 bytes of memory
// per chunk, never the data.
type entry struct {
	off uint32 // offset of the record header
	n   uint32 // data length
}

// createSegment creates (or truncates) the segment file starting at chunk
// first and writes its header. With sync it fsyncs the file and the
// directory.
func createSegment(dir string, h segmentHeader, sync bool) (*segment, error) {
	hdr, err := encodeSegmentHeader(h)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, segmentName(h.first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, FileMode)
	if err != nil {
		return nil, fmt.Errorf("creating segment: %w", err)
	}
	_, err = f.WriteAt(hdr, 0)
	if err == nil && sync {
		err = f.Sync()
		if err == nil {
			err = syncDir(dir)
		}
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("creating segment %s: %w", filepath.Base(path), err)
	}
	return &segment{first: h.first, path: path, f: f, size: segmentHeaderSize}, nil
}

// readRecord reads and verifies chunk no's record at off in f, into buf
// when it is large enough.
func readRecord(f *os.File, off int64, n uint32, no int64, buf []byte) ([]byte, error) {
	if size := recordHeaderSize + int(n); cap(buf) >= size {
		buf = buf[:size]
	} else {
		buf = make([]byte, size)
	}
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("record of chunk %d cut short: %w", no, ErrCorrupt)
		}
		return nil, err
	}
	hdr, data := buf[:recordHeaderSize], buf[recordHeaderSize:]
	if err := parseRecordHeader(hdr).check(hdr, no, data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return data, nil
}

// segmentScan is what recovery learnt from reading one segment file.
type segmentScan struct {
	name      string
	path      string
	fileSize  int64
	headerOK  bool
	first     int64  // from the header when headerOK, else from the name
	baseBytes int64  // chunk bytes before first
	startHash []byte // hash state at first

	end       int64 // number after the last valid record
	endBytes  int64 // chunk bytes before end
	endHash   []byte
	validSize int64 // header plus valid records
	entries   []entry

	// The hash state and byte count at the acknowledged position, when
	// first <= acked <= end.
	hasAck    bool
	ackHash   []byte
	ackBytes  int64
	problem   string // first damage found, "" when the file is clean
	damagedAt int64  // offset of the damage
}

// scanSegment reads a segment file start to end, verifying every record,
// until the end or the first damage. Only I/O errors are returned; damage
// is described in the scan.
func scanSegment(path string, nameFirst, acked int64) (*segmentScan, error) {
	sc := &segmentScan{name: filepath.Base(path), path: path, first: nameFirst}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sc.fileSize = fi.Size()
	br := bufio.NewReaderSize(f, 256<<10)

	hb := make([]byte, segmentHeaderSize)
	if _, err := io.ReadFull(br, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			sc.problem = fmt.Sprintf("header cut short at %d bytes", sc.fileSize)
			return sc, nil
		}
		return nil, err
	}
	h, err := decodeSegmentHeader(hb)
	if err == nil && h.first != nameFirst {
		err = fmt.Errorf("header starts at chunk %d, name at %d", h.first, nameFirst)
	}
	if err != nil {
		sc.problem = err.Error()
		return sc, nil
	}
	dig, err := restoreHash(h.hashState)
	if err != nil {
		sc.problem = err.Error()
		return sc, nil
	}
	sc.headerOK, sc.baseBytes, sc.startHash = true, h.baseBytes, h.hashState

	off, no, total := int64(segmentHeaderSize), h.first, h.baseBytes
	var rh [recordHeaderSize]byte
	var data []byte
	for {
		if no == acked {
			if sc.ackHash, err = hashState(dig); err != nil {
				return nil, err
			}
			sc.hasAck, sc.ackBytes = true, total
		}
		left := sc.fileSize - off
		if left == 0 {
			break
		}
		if left < recordHeaderSize {
			sc.problem = fmt.Sprintf("record header of chunk %d cut short at offset %d", no, off)
			break
		}
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			return nil, err
		}
		rec := parseRecordHeader(rh[:])
		size := recordHeaderSize + int64(rec.n)
		switch {
		case rec.magic != recordMagic:
			sc.problem = fmt.Sprintf("no record of chunk %d at offset %d (bad magic)", no, off)
		case rec.no != uint64(no):
			sc.problem = fmt.Sprintf("record at offset %d holds chunk %d, want %d", off, rec.no, no)
		case rec.n > MaxChunkBytes || off+size > maxSegmentFile || no+1 > maxNumber:
			sc.problem = fmt.Sprintf("record of chunk %d at offset %d out of range", no, off)
		case size > left:
			sc.problem = fmt.Sprintf("record of chunk %d at offset %d cut short (%d of %d bytes)", no, off, left, size)
		}
		if sc.problem != "" {
			break
		}
		if cap(data) < int(rec.n) {
			data = make([]byte, rec.n)
		}
		data = data[:rec.n]
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		if err := rec.check(rh[:], no, data); err != nil {
			sc.problem = fmt.Sprintf("record of chunk %d at offset %d: %v", no, off, err)
			break
		}
		dig.Write(data)
		sc.entries = append(sc.entries, entry{off: uint32(off), n: rec.n})
		off += size
		total += int64(rec.n)
		no++
	}
	sc.end, sc.endBytes, sc.validSize, sc.damagedAt = no, total, off, off
	if sc.endHash, err = hashState(dig); err != nil {
		return nil, err
	}
	return sc, nil
}
