package auth

import (
	"encoding/binary"
	"hash"
	"math/bits"

	"golang.org/x/crypto/blake2b"
)

// This file computes argon2 (RFC 9106, version 0x13) into a caller-owned
// memory buffer, so that a Verifier reuses the same MaxConcurrent buffers
// for every verification instead of allocating m KiB each time as
// golang.org/x/crypto/argon2 does (its API takes no buffer). Under a flood
// the heap then stays flat: no garbage for the collector to catch up with.
// Lanes are filled one after the other in one goroutine (the result does
// not depend on the order within a slice), so one verification occupies one
// CPU whatever its p. argon2_test.go checks the output against
// golang.org/x/crypto/argon2 over a grid of parameters.
//
// The block functions are go:norace: a buffer belongs to one verification
// at a time (its verification slot), so there is nothing for the race
// detector to find there, and instrumenting every word access made a
// verification ten times slower and touched shadow memory for every block.

const (
	blockWords = 128 // one 1 KiB block in uint64 words
	syncPoints = 4   // slices per pass
	typeI      = 1   // argon2 type ids in H0
	typeID     = 2
)

type block [blockWords]uint64

// argon2Key derives keyLen bytes from password and salt with argon2i or
// argon2id, using buf for its memory when it is large enough. It returns
// the key and the buffer it used (to keep for the next call).
func argon2Key(variant Variant, password, salt []byte, time, memory, threads uint32, keyLen uint32, buf []block) ([]byte, []block) {
	typ := uint32(typeI)
	if variant == Argon2id {
		typ = typeID
	}
	// H0 takes m as given; the memory used is m rounded down to a multiple
	// of 4p, and at least 8p blocks (Parse refuses m < 8p anyway).
	blocks := max(memory/(syncPoints*threads)*(syncPoints*threads), 2*syncPoints*threads)
	if uint32(cap(buf)) < blocks {
		buf = make([]block, blocks)
	}
	B := buf[:blocks]

	var h0 [blake2b.Size + 8]byte
	hashH0(h0[:blake2b.Size], password, salt, time, memory, threads, keyLen, typ)
	laneLen := blocks / threads
	var tmp [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)
		for j := uint32(0); j < 2; j++ {
			binary.LittleEndian.PutUint32(h0[blake2b.Size:], j)
			hPrime(tmp[:], h0[:])
			for k := range B[lane*laneLen+j] {
				B[lane*laneLen+j][k] = binary.LittleEndian.Uint64(tmp[k*8:])
			}
		}
	}
	fillBlocks(B, time, blocks, threads, laneLen, typ)

	var c block
	for lane := uint32(0); lane < threads; lane++ {
		last := &B[lane*laneLen+laneLen-1]
		for k := range c {
			c[k] ^= last[k]
		}
	}
	for k, w := range c {
		binary.LittleEndian.PutUint64(tmp[k*8:], w)
	}
	key := make([]byte, keyLen)
	hPrime(key, tmp[:])
	return key, buf
}

// hashH0 writes H0 (RFC 9106 section 3.2, step 1) into out.
func hashH0(out []byte, password, salt []byte, time, memory, threads, keyLen, typ uint32) {
	h, _ := blake2b.New512(nil)
	var le [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(le[:], v)
		h.Write(le[:])
	}
	put(threads)
	put(keyLen)
	put(memory)
	put(time)
	put(Version)
	put(typ)
	put(uint32(len(password)))
	h.Write(password)
	put(uint32(len(salt)))
	h.Write(salt)
	put(0) // no secret key
	put(0) // no associated data
	h.Sum(out[:0])
}

// hPrime is the variable-length hash H' (RFC 9106 section 3.3) of in into
// out.
func hPrime(out, in []byte) {
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil)
		h.Write(le[:])
		h.Write(in)
		h.Sum(out[:0])
		return
	}
	var v [blake2b.Size]byte
	h, _ := blake2b.New512(nil)
	h.Write(le[:])
	h.Write(in)
	h.Sum(v[:0])
	n := copy(out, v[:32])
	for len(out)-n > blake2b.Size {
		v = blake2b.Sum512(v[:])
		n += copy(out[n:], v[:32])
	}
	var last hash.Hash
	last, _ = blake2b.New(len(out)-n, nil)
	last.Write(v[:])
	last.Sum(out[n:n])
}

// fillBlocks runs the passes over memory B (RFC 9106 section 3.4).
//
//go:norace
func fillBlocks(B []block, time, blocks, threads, laneLen, typ uint32) {
	segLen := laneLen / syncPoints
	var addr, in, zero block
	for pass := uint32(0); pass < time; pass++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			for lane := uint32(0); lane < threads; lane++ {
				independent := typ == typeI || (typ == typeID && pass == 0 && slice < 2)
				if independent {
					in = block{}
					in[0], in[1], in[2], in[3], in[4], in[5] = uint64(pass), uint64(lane), uint64(slice), uint64(blocks), uint64(time), uint64(typ)
				}
				start := uint32(0)
				if pass == 0 && slice == 0 {
					start = 2
					if independent {
						nextAddresses(&addr, &in, &zero)
					}
				}
				offset := lane*laneLen + slice*segLen + start
				for i := start; i < segLen; i, offset = i+1, offset+1 {
					prev := offset - 1
					if offset%laneLen == 0 {
						prev = offset + laneLen - 1
					}
					var rand uint64
					if independent {
						if i%blockWords == 0 {
							nextAddresses(&addr, &in, &zero)
						}
						rand = addr[i%blockWords]
					} else {
						rand = B[prev][0]
					}
					refLane := uint32(rand>>32) % threads
					if pass == 0 && slice == 0 {
						refLane = lane
					}
					ref := refIndex(pass, slice, i, segLen, laneLen, uint32(rand), refLane == lane)
					compress(&B[offset], &B[prev], &B[refLane*laneLen+ref], pass > 0)
				}
			}
		}
	}
}

// refIndex maps a pseudo-random 32-bit value to a block of the reference
// lane (RFC 9106 section 3.4.1.2).
func refIndex(pass, slice, index, segLen, laneLen, rand uint32, sameLane bool) uint32 {
	var area uint32
	switch {
	case pass == 0 && slice == 0:
		area = index - 1
	case pass == 0 && sameLane:
		area = slice*segLen + index - 1
	case pass == 0:
		area = slice * segLen
		if index == 0 {
			area--
		}
	case sameLane:
		area = laneLen - segLen + index - 1
	default:
		area = laneLen - segLen
		if index == 0 {
			area--
		}
	}
	x := uint64(rand) * uint64(rand) >> 32
	rel := uint64(area) - 1 - (uint64(area) * x >> 32)
	startPos := uint64(0)
	if pass != 0 && slice != syncPoints-1 {
		startPos = uint64((slice + 1) * segLen)
	}
	return uint32((startPos + rel) % uint64(laneLen))
}

// nextAddresses computes the next block of data-independent addresses.
//
//go:norace
func nextAddresses(addr, in, zero *block) {
	in[6]++
	compress(addr, zero, in, false)
	compress(addr, zero, addr, false)
}

// compress sets out = G(x, y), or out ^= G(x, y) when xor is set (passes
// after the first, version 0x13). out may alias y.
//
//go:norace
func compress(out, x, y *block, xor bool) {
	var r, q block
	for k := range r {
		r[k] = x[k] ^ y[k]
	}
	q = r
	if xor {
		for k := range q {
			q[k] ^= out[k]
		}
	}
	for row := 0; row < 8; row++ {
		b := 16 * row
		permute(&r[b], &r[b+1], &r[b+2], &r[b+3], &r[b+4], &r[b+5], &r[b+6], &r[b+7],
			&r[b+8], &r[b+9], &r[b+10], &r[b+11], &r[b+12], &r[b+13], &r[b+14], &r[b+15])
	}
	for col := 0; col < 8; col++ {
		b := 2 * col
		permute(&r[b], &r[b+1], &r[b+16], &r[b+17], &r[b+32], &r[b+33], &r[b+48], &r[b+49],
			&r[b+64], &r[b+65], &r[b+80], &r[b+81], &r[b+96], &r[b+97], &r[b+112], &r[b+113])
	}
	for k := range out {
		out[k] = q[k] ^ r[k]
	}
}

// permute is the BlaMka permutation P on 16 words.
//
//go:norace
func permute(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15 *uint64) {
	gb(v0, v4, v8, v12)
	gb(v1, v5, v9, v13)
	gb(v2, v6, v10, v14)
	gb(v3, v7, v11, v15)
	gb(v0, v5, v10, v15)
	gb(v1, v6, v11, v12)
	gb(v2, v7, v8, v13)
	gb(v3, v4, v9, v14)
}

//go:norace
func gb(a, b, c, d *uint64) {
	*a += *b + 2*uint64(uint32(*a))*uint64(uint32(*b))
	*d = bits.RotateLeft64(*d^*a, -32)
	*c += *d + 2*uint64(uint32(*c))*uint64(uint32(*d))
	*b = bits.RotateLeft64(*b^*c, -24)
	*a += *b + 2*uint64(uint32(*a))*uint64(uint32(*b))
	*d = bits.RotateLeft64(*d^*a, -16)
	*c += *d + 2*uint64(uint32(*c))*uint64(uint32(*d))
	*b = bits.RotateLeft64(*b^*c, -63)
}
