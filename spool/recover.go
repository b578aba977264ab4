package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Recovery reports what Open found and what it repaired. A spool closed
// cleanly, or killed while it was written, recovers with no Damage.
type Recovery struct {
	Chunks  int64 // chunks in the spool (Next)
	Acked   int64 // chunks acknowledged (Acked)
	Bytes   int64 // chunk bytes in the spool (Bytes)
	Pending int64 // unacknowledged bytes (Pending)
	Sealed  bool  // Seal was called before

	// DroppedBytes counts segment bytes discarded: torn or corrupt
	// records, whatever followed them, damaged segment files.
	DroppedBytes int64
	// DroppedChunks counts intact chunk records discarded because they
	// followed damage in unacknowledged data (numbering must stay
	// gapless, so nothing after a hole is kept). The damaged records
	// themselves are only in DroppedBytes: their count is unknown.
	DroppedChunks int64
	// DroppedSegments counts segment files deleted because they were
	// damaged or followed damage.
	DroppedSegments int
	// AckAdvanced counts chunks the acknowledged position moved over
	// because their segments were already deleted: a segment is deleted
	// only after all its chunks were acknowledged, so their
	// acknowledgement was written but lost in a crash.
	AckAdvanced int64
	// Damage describes each problem found, for the log. Empty when the
	// spool was intact.
	Damage []string
}

// Open reopens the spool in dir after a restart or a crash. It verifies
// every record of every segment, keeps the longest valid prefix of the
// chunk sequence, truncates or deletes what follows damage, and reports
// it. The acknowledged position is the newest valid state slot,
// reconciled with the segments found (see the package documentation).
// It may wrap ErrCorrupt (not a spool: no meta file), ErrLocked,
// fs.ErrNotExist (no dir) or an I/O error.
func Open(dir string, o Options) (*Spool, Recovery, error) {
	s, r, err := openSpool(dir, o)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("opening spool %s: %w", dir, err)
	}
	return s, r, nil
}

func openSpool(dir string, o Options) (s *Spool, r Recovery, err error) {
	o, err = o.normalize()
	if err != nil {
		return nil, r, err
	}
	meta, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, r, serr
		}
		return nil, r, fmt.Errorf("no %s file: %w", metaFile, ErrCorrupt)
	}
	if err != nil {
		return nil, r, err
	}
	st, slot, slotOK, problem, err := openStateFile(dir)
	if err != nil {
		return nil, r, err
	}
	var segs []*segment
	defer func() {
		if err != nil {
			for _, seg := range segs {
				_ = seg.f.Close()
			}
			_ = st.f.Close()
		}
	}()
	_ = os.Remove(filepath.Join(dir, metaTmpFile))
	if !slotOK {
		r.Damage = append(r.Damage, problem)
		slot = stateSlot{hashState: emptyHashState()}
	}

	scans, err := scanSegments(dir, slot.acked)
	if err != nil {
		return nil, r, err
	}
	p := planRecovery(scans, slot, &r)
	changed := !slotOK || len(p.remove) > 0

	for _, sc := range p.remove {
		if err := os.Remove(sc.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, r, fmt.Errorf("deleting segment: %w", err)
		}
	}
	var index []entry
	for _, sc := range p.chain {
		if sc.validSize < sc.fileSize {
			if err := os.Truncate(sc.path, sc.validSize); err != nil {
				return nil, r, fmt.Errorf("truncating segment: %w", err)
			}
			changed = true
		}
		f, err := os.OpenFile(sc.path, os.O_RDWR, 0)
		if err != nil {
			return nil, r, err
		}
		segs = append(segs, &segment{first: sc.first, path: sc.path, f: f, size: sc.validSize})
		index = append(index, sc.entries...)
	}
	sync := o.Sync != SyncNever
	if len(segs) == 0 {
		seg, err := createSegment(dir, segmentHeader{first: p.next, baseBytes: p.bytes, hashState: p.hash}, false)
		if err != nil {
			return nil, r, err
		}
		segs = append(segs, seg)
		changed = true
	}
	h, err := restoreHash(p.hash)
	if err != nil {
		return nil, r, err
	}
	s = &Spool{
		dir:        dir,
		opts:       o,
		meta:       meta,
		sealed:     slot.sealed,
		segs:       segs,
		index:      index,
		base:       segs[0].first,
		next:       p.next,
		bytes:      p.bytes,
		hash:       h,
		acked:      p.acked,
		ackedBytes: p.ackedBytes,
		ackHash:    p.ackHash,
		state:      st,
	}
	s.dropAcked()
	if changed || p.acked != slot.acked {
		if _, err := st.write(s.stateSlot(), sync); err != nil {
			return nil, r, err
		}
		if sync {
			if err := segs[len(segs)-1].f.Sync(); err != nil {
				return nil, r, fmt.Errorf("syncing segment: %w", err)
			}
			if err := syncDir(dir); err != nil {
				return nil, r, err
			}
		}
	}
	r.Chunks, r.Acked, r.Bytes, r.Pending, r.Sealed = s.next, s.acked, s.bytes, s.bytes-s.ackedBytes, s.sealed
	s.start()
	return s, r, nil
}

// scanSegments scans every segment file in dir, in chunk order.
func scanSegments(dir string, acked int64) ([]*segmentScan, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var scans []*segmentScan
	for _, e := range ents { // sorted by name, which is chunk order
		first, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		sc, err := scanSegment(filepath.Join(dir, e.Name()), first, acked)
		if err != nil {
			return nil, fmt.Errorf("scanning segment %s: %w", e.Name(), err)
		}
		scans = append(scans, sc)
	}
	return scans, nil
}

// recoveryPlan is the state Open settles on.
type recoveryPlan struct {
	chain  []*segmentScan // segments kept, contiguous, in order
	remove []*segmentScan // segments deleted

	next, bytes int64
	hash        []byte // running SHA-256 state at next
	acked       int64
	ackedBytes  int64
	ackHash     []byte // SHA-256 state at acked
}

// planRecovery decides which segments to keep. Rules:
//
//   - A segment with a bad header is unusable and deleted.
//   - The kept chain is a run of segments with consecutive chunk numbers,
//     each cut at its first damaged record.
//   - A hole in the numbering (a segment starts after where the chain
//     ends) within acknowledged chunks is harmless: the chain restarts
//     after it and what came before is deleted as acknowledged.
//   - A hole in unacknowledged chunks ends the chain: every later segment
//     is deleted, since a sender must never skip a number.
//   - Acknowledged position before the chain's first chunk: those chunks'
//     segments were deleted, which happens only after acknowledgement, so
//     the position moves up to the chain.
//   - Acknowledged position after the chain's end: acknowledged chunks
//     were lost locally (a power cut took data the platform already has).
//     Numbering continues at the acknowledged position and the hash
//     comes from the state slot.
func planRecovery(scans []*segmentScan, slot stateSlot, r *Recovery) recoveryPlan {
	var p recoveryPlan
	var good []*segmentScan
	for _, sc := range scans {
		if sc.headerOK {
			good = append(good, sc)
			continue
		}
		p.remove = append(p.remove, sc)
		r.DroppedBytes += sc.fileSize
		r.DroppedSegments++
		r.Damage = append(r.Damage, fmt.Sprintf("segment %s: %s; deleted (%d bytes)", sc.name, sc.problem, sc.fileSize))
	}

	acked := slot.acked
	var stale []*segmentScan // acknowledged segments left behind
	for i, sc := range good {
		if len(p.chain) == 0 {
			p.chain = append(p.chain, sc)
			continue
		}
		end := p.chain[len(p.chain)-1].end
		switch {
		case sc.first == end:
			p.chain = append(p.chain, sc)
			continue
		case sc.first > end && sc.first <= acked:
			stale = append(stale, p.chain...)
			p.chain = []*segmentScan{sc}
			continue
		}
		for _, d := range good[i:] {
			p.remove = append(p.remove, d)
			r.DroppedBytes += d.fileSize
			r.DroppedChunks += d.end - d.first
			r.DroppedSegments++
			r.Damage = append(r.Damage, fmt.Sprintf("segment %s: follows unacknowledged chunk %d, which is missing; deleted (%d chunks, %d bytes)",
				d.name, end, d.end-d.first, d.fileSize))
		}
		break
	}

	p.acked, p.ackedBytes, p.ackHash = acked, slot.ackedBytes, slot.hashState
	if len(p.chain) > 0 {
		first, last := p.chain[0], p.chain[len(p.chain)-1]
		switch {
		case acked < first.first:
			r.AckAdvanced = first.first - acked
			r.Damage = append(r.Damage, fmt.Sprintf("chunks %d..%d have no segment; taken as acknowledged", acked, first.first-1))
			p.acked, p.ackedBytes, p.ackHash = first.first, first.baseBytes, first.startHash
		case acked <= last.end:
			for _, sc := range p.chain {
				if sc.hasAck {
					p.ackedBytes, p.ackHash = sc.ackBytes, sc.ackHash
					break
				}
			}
		default:
			r.Damage = append(r.Damage, fmt.Sprintf("acknowledged chunks %d..%d lost locally; numbering continues at %d", last.end, acked-1, acked))
			stale = append(stale, p.chain...)
			p.chain = nil
		}
	}
	for _, sc := range p.chain {
		if sc.problem != "" {
			r.DroppedBytes += sc.fileSize - sc.validSize
			r.Damage = append(r.Damage, fmt.Sprintf("segment %s: %s; cut at offset %d (%d bytes dropped)",
				sc.name, sc.problem, sc.validSize, sc.fileSize-sc.validSize))
		}
	}
	for _, sc := range stale {
		if sc.problem != "" {
			r.DroppedBytes += sc.fileSize - sc.validSize
			r.Damage = append(r.Damage, fmt.Sprintf("segment %s: %s; acknowledged, deleted", sc.name, sc.problem))
		}
	}
	p.remove = append(p.remove, stale...)
	if len(p.chain) > 0 {
		last := p.chain[len(p.chain)-1]
		p.next, p.bytes, p.hash = last.end, last.endBytes, last.endHash
	} else {
		p.next, p.bytes, p.hash = p.acked, p.ackedBytes, p.ackHash
	}
	return p
}
