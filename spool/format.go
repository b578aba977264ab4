package spool

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
)

// On-disk layout; the package documentation describes it for humans.
const (
	recordMagic  uint32 = 0x4b435053 // "SPCK" in file order
	segmentMagic uint32 = 0x47535053 // "SPSG"
	stateMagic   uint32 = 0x54535053 // "SPST"

	formatVersion = 1

	recordHeaderSize  = 20  // magic u32, no u64, len u32, crc u32
	segmentHeaderSize = 160 // see encodeSegmentHeader
	stateSlotSize     = 192 // see encodeStateSlot
	stateSlotStride   = 4096
	maxHashState      = 128

	// maxNumber bounds chunk numbers and byte counts read from disk, so
	// that arithmetic on them cannot overflow.
	maxNumber = 1 << 62
	// maxSegmentFile bounds record offsets so that they fit the uint32 of
	// an index entry.
	maxSegmentFile = 1<<32 - 1

	stateFlagSealed = 1
)

var le = binary.LittleEndian

// castagnoli is the CRC-32C table; it is never modified after init.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadFormat marks on-disk bytes that do not decode; recovery turns it
// into a damage report, Read into ErrCorrupt.
var errBadFormat = errors.New("bad format")

// putRecordHeader fills b[:recordHeaderSize] with the header of chunk no
// holding data.
func putRecordHeader(b []byte, no int64, data []byte) {
	le.PutUint32(b[0:], recordMagic)
	le.PutUint64(b[4:], uint64(no))
	le.PutUint32(b[12:], uint32(len(data)))
	c := crc32.Update(0, castagnoli, b[:16])
	c = crc32.Update(c, castagnoli, data)
	le.PutUint32(b[16:], c)
}

// recordHeader is a decoded record header.
type recordHeader struct {
	magic uint32
	no    uint64
	n     uint32
	crc   uint32
}

func parseRecordHeader(b []byte) recordHeader {
	return recordHeader{
		magic: le.Uint32(b[0:]),
		no:    le.Uint64(b[4:]),
		n:     le.Uint32(b[12:]),
		crc:   le.Uint32(b[16:]),
	}
}

// check verifies a decoded header against the chunk number expected and
// the data that followed it.
func (h recordHeader) check(hdr []byte, no int64, data []byte) error {
	switch {
	case h.magic != recordMagic:
		return fmt.Errorf("bad record magic %#x: %w", h.magic, errBadFormat)
	case h.no != uint64(no):
		return fmt.Errorf("record holds chunk %d, want %d: %w", h.no, no, errBadFormat)
	case int(h.n) != len(data):
		return fmt.Errorf("record length %d, want %d: %w", h.n, len(data), errBadFormat)
	}
	c := crc32.Update(0, castagnoli, hdr[:16])
	c = crc32.Update(c, castagnoli, data)
	if c != h.crc {
		return fmt.Errorf("checksum mismatch in chunk %d: %w", no, errBadFormat)
	}
	return nil
}

// segmentHeader starts every segment file.
type segmentHeader struct {
	first     int64  // number of the segment's first chunk
	baseBytes int64  // chunk bytes before first
	hashState []byte // SHA-256 state over chunks [0, first)
}

// encodeSegmentHeader lays the header out as
//
//	0   magic u32
//	4   version u16
//	6   hash state length u16
//	8   first chunk number u64
//	16  bytes before the first chunk u64
//	24  hash state, zero-padded to 128 bytes
//	152 zero u32
//	156 CRC-32C of bytes 0..156 u32
func encodeSegmentHeader(h segmentHeader) ([]byte, error) {
	if len(h.hashState) > maxHashState {
		return nil, fmt.Errorf("encoding segment header: hash state of %d bytes", len(h.hashState))
	}
	b := make([]byte, segmentHeaderSize)
	le.PutUint32(b[0:], segmentMagic)
	le.PutUint16(b[4:], formatVersion)
	le.PutUint16(b[6:], uint16(len(h.hashState)))
	le.PutUint64(b[8:], uint64(h.first))
	le.PutUint64(b[16:], uint64(h.baseBytes))
	copy(b[24:], h.hashState)
	le.PutUint32(b[156:], crc32.Checksum(b[:156], castagnoli))
	return b, nil
}

func decodeSegmentHeader(b []byte) (segmentHeader, error) {
	var h segmentHeader
	if len(b) < segmentHeaderSize {
		return h, fmt.Errorf("short segment header: %w", errBadFormat)
	}
	if le.Uint32(b[156:]) != crc32.Checksum(b[:156], castagnoli) {
		return h, fmt.Errorf("segment header checksum mismatch: %w", errBadFormat)
	}
	if m := le.Uint32(b[0:]); m != segmentMagic {
		return h, fmt.Errorf("bad segment magic %#x: %w", m, errBadFormat)
	}
	if v := le.Uint16(b[4:]); v != formatVersion {
		return h, fmt.Errorf("unknown segment version %d: %w", v, errBadFormat)
	}
	n := int(le.Uint16(b[6:]))
	first, base := le.Uint64(b[8:]), le.Uint64(b[16:])
	if n > maxHashState || first > maxNumber || base > maxNumber {
		return h, fmt.Errorf("segment header out of range: %w", errBadFormat)
	}
	h.first, h.baseBytes = int64(first), int64(base)
	h.hashState = bytes.Clone(b[24 : 24+n])
	if _, err := restoreHash(h.hashState); err != nil {
		return h, fmt.Errorf("segment header hash state: %w", errBadFormat)
	}
	if h.first == 0 && (h.baseBytes != 0 || !isEmptyHashState(h.hashState)) {
		return h, fmt.Errorf("first segment does not start from nothing: %w", errBadFormat)
	}
	return h, nil
}

// stateSlot is one copy of the acknowledged position.
type stateSlot struct {
	seq        uint64 // higher wins
	acked      int64  // chunks acknowledged
	ackedBytes int64  // their bytes
	sealed     bool
	hashState  []byte // SHA-256 state over chunks [0, acked)
}

// encodeStateSlot lays a slot out as
//
//	0   magic u32
//	4   version u16
//	6   hash state length u16
//	8   sequence u64
//	16  acknowledged chunks u64
//	24  acknowledged bytes u64
//	32  flags u32 (1 = sealed)
//	36  hash state, zero-padded to 128 bytes
//	164 zero, 24 bytes
//	188 CRC-32C of bytes 0..188 u32
func encodeStateSlot(s stateSlot) ([]byte, error) {
	if len(s.hashState) > maxHashState {
		return nil, fmt.Errorf("encoding state: hash state of %d bytes", len(s.hashState))
	}
	b := make([]byte, stateSlotSize)
	le.PutUint32(b[0:], stateMagic)
	le.PutUint16(b[4:], formatVersion)
	le.PutUint16(b[6:], uint16(len(s.hashState)))
	le.PutUint64(b[8:], s.seq)
	le.PutUint64(b[16:], uint64(s.acked))
	le.PutUint64(b[24:], uint64(s.ackedBytes))
	var flags uint32
	if s.sealed {
		flags |= stateFlagSealed
	}
	le.PutUint32(b[32:], flags)
	copy(b[36:], s.hashState)
	le.PutUint32(b[188:], crc32.Checksum(b[:188], castagnoli))
	return b, nil
}

func decodeStateSlot(b []byte) (stateSlot, error) {
	var s stateSlot
	if len(b) < stateSlotSize {
		return s, fmt.Errorf("short state slot: %w", errBadFormat)
	}
	if le.Uint32(b[188:]) != crc32.Checksum(b[:188], castagnoli) {
		return s, fmt.Errorf("state slot checksum mismatch: %w", errBadFormat)
	}
	if m := le.Uint32(b[0:]); m != stateMagic {
		return s, fmt.Errorf("bad state magic %#x: %w", m, errBadFormat)
	}
	if v := le.Uint16(b[4:]); v != formatVersion {
		return s, fmt.Errorf("unknown state version %d: %w", v, errBadFormat)
	}
	n := int(le.Uint16(b[6:]))
	acked, ackedBytes := le.Uint64(b[16:]), le.Uint64(b[24:])
	if n > maxHashState || acked > maxNumber || ackedBytes > maxNumber {
		return s, fmt.Errorf("state slot out of range: %w", errBadFormat)
	}
	s.seq = le.Uint64(b[8:])
	s.acked, s.ackedBytes = int64(acked), int64(ackedBytes)
	s.sealed = le.Uint32(b[32:])&stateFlagSealed != 0
	s.hashState = bytes.Clone(b[36 : 36+n])
	if _, err := restoreHash(s.hashState); err != nil {
		return s, fmt.Errorf("state slot hash state: %w", errBadFormat)
	}
	if s.acked == 0 && (s.ackedBytes != 0 || !isEmptyHashState(s.hashState)) {
		return s, fmt.Errorf("state slot with nothing acknowledged has a hash: %w", errBadFormat)
	}
	return s, nil
}

// hashState marshals a SHA-256 digest's running state.
func hashState(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("marshalling hash state: digest cannot be marshalled")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshalling hash state: %w", err)
	}
	return b, nil
}

// restoreHash makes a SHA-256 digest continuing from a marshalled state.
func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return nil, errors.New("restoring hash state: digest cannot be unmarshalled")
	}
	if err := u.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restoring hash state: %w", err)
	}
	return h, nil
}

// emptyHashState is the marshalled state of a fresh SHA-256 digest.
func emptyHashState() []byte {
	b, err := hashState(sha256.New())
	if err != nil {
		panic(err) // crypto/sha256 digests always marshal
	}
	return b
}

func isEmptyHashState(b []byte) bool {
	return bytes.Equal(b, emptyHashState())
}
