package actors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence"
	"github.com/lambda-endpoint/lambda-endpoint/spool"
	"github.com/lambda-endpoint/lambda-endpoint/tracer"
)

// unreadableSuffix marks a spool directory that could not be recovered:
// moved aside, kept for an operator, never retried.
const unreadableSuffix = ".unreadable"

// interruptedCode is the exit code reported for a tracer that died with the
// endpoint: the parent-death signal is SIGKILL.
const interruptedCode = 128 + 9

// spoolPath is the spool directory of the trace whose script is path.
func (rt *Runtime) spoolPath(path string) string {
	return filepath.Join(rt.opts.SpoolDir, strings.TrimSuffix(filepath.Base(path), ".trace"))
}

// recover finds the spools an earlier process left behind. Tracers of that
// process died with it (parent-death signal; their leftover process trees
// are killed here through their cgroups), so a run without a final state
// ends with reason interrupted. Each recovered run is delivered like any
// other: the unacknowledged chunks, then finished.
func (rt *Runtime) recover() ([]*traceRun, error) {
	if rt.opts.CgroupParent != "-" {
		if err := tracer.Cleanup(rt.opts.CgroupParent); err != nil {
			rt.log.Warn("cleaning up leftover tracer cgroups", "err", err)
		}
	}
	dirs, err := spool.List(rt.opts.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("listing spools: %w", err)
	}
	var runs []*traceRun
	for _, dir := range dirs {
		if strings.HasSuffix(dir, unreadableSuffix) {
			continue // an operator's to inspect
		}
		r, err := rt.recoverOne(dir)
		if err != nil {
			bad := dir + unreadableSuffix
			rt.log.Error("spool cannot be recovered; moved aside", "spool", dir, "moved_to", bad, "err", err)
			if rerr := os.Rename(dir, bad); rerr != nil {
				rt.log.Error("moving unreadable spool aside", "spool", dir, "err", rerr)
			}
			continue
		}
		runs = append(runs, r)
	}
	return runs, nil
}

func (rt *Runtime) recoverOne(dir string) (*traceRun, error) {
	sp, rec, err := spool.Open(dir, rt.opts.Spool)
	if err != nil {
		return nil, fmt.Errorf("opening spool: %w", err)
	}
	var meta runMeta
	if err := json.Unmarshal(sp.Meta(), &meta); err != nil || meta.Path == "" {
		sp.Close()
		return nil, fmt.Errorf("decoding run meta: %v", err)
	}
	log := rt.log.With("trace_path", meta.Path)
	if rec.DroppedBytes > 0 {
		log.Warn("spool had a torn or corrupt tail; kept the valid prefix", "dropped_bytes", rec.DroppedBytes)
	}
	if !sp.Sealed() {
		// The trace was running: what the pump had read but not cut into
		// a chunk is in the staging file.
		n, err := spool.RecoverStaged(sp, rt.opts.ChunkSize)
		if n > 0 {
			log.Info("recovered output read before the crash", "bytes", n)
		}
		if err != nil {
			log.Error("recovering staged output", "err", err)
			if !sp.Sealed() {
				sp.Close()
				return nil, fmt.Errorf("sealing spool: %w", err)
			}
		}
	}
	if meta.Final == nil {
		meta.Final = &finalState{
			Reason:  messages.ReasonInterrupted,
			Code:    interruptedCode,
			Stderr:  "the endpoint stopped while this trace ran; its tracer was killed with it",
			EndedAt: time.Now().UTC(),
		}
		b, _ := json.Marshal(meta)
		if err := sp.SetMeta(b); err != nil {
			sp.Close()
			return nil, fmt.Errorf("recording interrupted state: %w", err)
		}
	}
	// The script of an interrupted trace may still be there.
	if filepath.Dir(meta.Path) == filepath.Clean(rt.opts.TraceDir) {
		os.Remove(meta.Path)
	}
	r := rt.newTraceRun(meta, "", tracer.Command{})
	r.sp, r.recovered = sp, true
	r.launchDone, r.pumpDone = true, true
	r.startAcked = meta.StartAcked || sp.Acked() > 0
	r.chunksAcked, r.bytesAcked, r.bytesRead = sp.Acked(), sp.AckedBytes(), sp.Bytes()
	r.ackObserved, r.chunksObserved = r.bytesAcked, r.chunksAcked
	rt.opts.Observer.SpoolBytes(r.event(), sp.Bytes()-sp.AckedBytes()) // on disk, not yet acknowledged
	r.final, r.finalRecorded, r.stopReason = meta.Final, true, meta.Final.Reason
	log.Info("recovered undelivered trace", "chunks", sp.Next(), "acked", sp.Acked(), "reason", meta.Final.Reason)
	rt.recordRun(r, persistence.RunDelivering)
	return r, nil
}
