package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// This file holds the helpers of the fault-injection tests (faults_test.go):
// readers of the platform's reassembled bytes, of the endpoint's spool on
// disk and of its memory use.

// info returns the endpoint's RunningInfo of path (with its reason, which
// the other tests' runningInfo lacks) and the answer's status.
func (e *endpoint) info(path string) (messages.RunningInfo, int) {
	var ri messages.RunningInfo
	st, b, _ := e.do("GET", "/trace/running?path="+path, "", nil)
	if st == http.StatusOK {
		if err := json.Unmarshal(b, &ri); err != nil {
			e.t.Fatalf("decoding RunningInfo %s: %v", b, err)
		}
	}
	return ri, st
}

// waitInfo polls the RunningInfo of path until cond holds and returns it.
func (e *endpoint) waitInfo(path string, within time.Duration, what string, cond func(messages.RunningInfo) bool) messages.RunningInfo {
	e.t.Helper()
	var ri messages.RunningInfo
	eventually(e.t, within, what, func() bool {
		var st int
		ri, st = e.info(path)
		return st == http.StatusOK && cond(ri)
	})
	return ri
}

// waitRecord waits until cond holds for what the platform holds of path.
func waitRecord(t *testing.T, p *platformtest.Platform, path string, within time.Duration, cond func(platformtest.TraceRecord) bool) platformtest.TraceRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rec, err := p.WaitFor(ctx, path, cond)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkProof compares the completeness proof of the finished message with
// what the platform reassembled.
func checkProof(t *testing.T, rec platformtest.TraceRecord) {
	t.Helper()
	f := rec.Finished
	if f == nil {
		t.Fatalf("no finished message for %s", rec.Path)
	}
	if f.Chunks != rec.ChunkCount || f.Bytes != rec.Bytes || f.SHA256 != rec.SHA256 {
		t.Errorf("finished proves %d chunks, %d bytes, sha256 %s; the platform holds %d chunks, %d bytes, sha256 %s",
			f.Chunks, f.Bytes, f.SHA256, rec.ChunkCount, rec.Bytes, rec.SHA256)
	}
}

// seqs parses data as the fake tracer's {"seq":N} lines. A last line
// without its newline is returned as partial instead of being parsed.
func seqs(t *testing.T, data []byte) (nums []int, partial []byte) {
	t.Helper()
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nums, data
		}
		var l struct {
			Seq *int `json:"seq"`
		}
		if err := json.Unmarshal(data[:i], &l); err != nil || l.Seq == nil {
			t.Fatalf("line %d is not a {\"seq\":N} line: %q (%v)", len(nums), data[:i], err)
		}
		nums = append(nums, *l.Seq)
		data = data[i+1:]
	}
	return nums, nil
}

// checkSeqs requires data to be the lines {"seq":0}, {"seq":1}, ... each
// exactly once and in order, want of them (want < 0: any number), with no
// partial line at the end unless allowPartial. It returns how many lines
// it found.
func checkSeqs(t *testing.T, data []byte, want int, allowPartial bool) int {
	t.Helper()
	nums, partial := seqs(t, data)
	for i, n := range nums {
		if n != i {
			t.Fatalf("line %d holds seq %d: lines lost, repeated or reordered (seqs around it: %v)", i, n, nums[max(0, i-3):min(len(nums), i+3)])
		}
	}
	if want >= 0 && len(nums) != want {
		t.Errorf("%d lines delivered, want %d", len(nums), want)
	}
	if len(partial) > 0 {
		if !allowPartial {
			t.Errorf("data ends in a partial line %q", partial)
		} else if next := fmt.Sprintf(`{"seq":%d}`, len(nums)); !strings.HasPrefix(next, string(partial)) {
			t.Errorf("partial last line %q is not the start of %q", partial, next)
		}
	}
	return len(nums)
}

// floodLineLen is the length of each line the fake tracer's flood mode
// writes.
const floodLineLen = 1024

// floodLine is line seq of the fake tracer's flood output (see
// tracer/internal/faketracer), newline included.
func floodLine(seq int) []byte {
	prefix := `{"seq":` + strconv.Itoa(seq) + `,"pad":"`
	b := make([]byte, 0, floodLineLen)
	b = append(b, prefix...)
	b = append(b, bytes.Repeat([]byte("x"), floodLineLen-len(prefix)-3)...)
	return append(b, "\"}\n"...)
}

// floodOutput is everything the fake tracer's "flood n" writes.
func floodOutput(n int) []byte {
	var b bytes.Buffer
	for seq := 0; b.Len() < n; seq++ {
		b.Write(floodLine(seq))
	}
	return b.Bytes()
}

// checkFloodPrefix requires data to be a prefix of the flood output: whole
// lines in order, each exactly once, except that the last may be cut.
func checkFloodPrefix(t *testing.T, data []byte) {
	t.Helper()
	for seq, off := 0, 0; off < len(data); seq, off = seq+1, off+floodLineLen {
		want := floodLine(seq)
		got := data[off:min(len(data), off+floodLineLen)]
		if !bytes.Equal(got, want[:len(got)]) {
			t.Fatalf("bytes %d..%d are not flood line %d: got %.80q..., want %.80q...", off, off+len(got), seq, got, want)
		}
	}
}

// spoolDir is the spool directory of the trace at path in an endpoint's
// data directory: <data-dir>/spool/<uuid of the script>.
func spoolDir(dataDir, path string) string {
	return filepath.Join(dataDir, "spool", strings.TrimSuffix(filepath.Base(path), ".trace"))
}

// spoolRecord is one chunk record of a spool segment file (spool/doc.go).
type spoolRecord struct {
	Off  int64 // offset of the record header in the file
	No   uint64
	Data []byte
}

// The spool's segment format, from spool/doc.go.
const (
	segmentHeaderLen = 160
	recordHeaderLen  = 20 // "SPCK" | no u64 | len u32 | crc u32
)

// lastSegment returns the path of the spool's last segment file.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment file in %s (%v)", dir, err)
	}
	sort.Strings(segs) // named by their first chunk, zero-padded
	return segs[len(segs)-1]
}

// segmentRecords parses a segment file written by a live spool: every
// record must be whole (no CRC check: that is the spool's business).
func segmentRecords(t *testing.T, file string) []spoolRecord {
	t.Helper()
	recs, err := parseSegment(file)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// parseSegment reads the records of a segment file; a record cut short or
// bytes that are not a record are an error.
func parseSegment(file string) ([]spoolRecord, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if len(b) < segmentHeaderLen || string(b[:4]) != "SPSG" {
		return nil, fmt.Errorf("%s: no segment header", file)
	}
	var recs []spoolRecord
	for off := int64(segmentHeaderLen); off < int64(len(b)); {
		h := b[off:]
		if len(h) < recordHeaderLen || string(h[:4]) != "SPCK" {
			return recs, fmt.Errorf("%s: no record at offset %d", file, off)
		}
		n := int64(binary.LittleEndian.Uint32(h[12:16]))
		if int64(len(h)) < recordHeaderLen+n {
			return recs, fmt.Errorf("%s: record at offset %d is cut short", file, off)
		}
		recs = append(recs, spoolRecord{
			Off:  off,
			No:   binary.LittleEndian.Uint64(h[4:12]),
			Data: append([]byte(nil), h[recordHeaderLen:recordHeaderLen+n]...),
		})
		off += recordHeaderLen + n
	}
	return recs, nil
}

// concatRecords is the chunk bytes of recs in order.
func concatRecords(recs []spoolRecord) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.Data...)
	}
	return b
}

// rssBytes returns the resident set size of pid from /proc/<pid>/status,
// or 0 once the process is gone.
func rssBytes(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// rssSampler samples a process's RSS every interval until stopped and
// keeps the highest value seen.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu  sync.Mutex
	max int64
	n   int
}

// sampleRSS starts sampling pid; Stop ends it (t's Cleanup does too).
func sampleRSS(t *testing.T, pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if v := rssBytes(pid); v > 0 {
				s.mu.Lock()
				s.max = max(s.max, v)
				s.n++
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Max returns the highest RSS sampled so far and how many samples were
// taken.
func (s *rssSampler) Max() (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.n
}

// Reset forgets the samples taken so far.
func (s *rssSampler) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max, s.n = 0, 0
}

// Stop ends the sampling; it may be called more than once.
func (s *rssSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// waitSpoolRemoved waits until a delivered trace's spool directory is gone.
func waitSpoolRemoved(t *testing.T, dir string) {
	t.Helper()
	eventually(t, 30*time.Second, "the delivered spool "+dir+" to be removed", func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})
}

// unreadableSpools lists spool directories an endpoint moved aside.
func unreadableSpools(dataDir string) []string {
	m, _ := filepath.Glob(filepath.Join(dataDir, "spool", "*.unreadable"))
	return m
}

// mib formats a byte count for messages.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// historyRun is the part of a GET /traces/history entry the tests read.
type historyRun struct {
	FilePath    string `json:"filePath"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
	Code        *int   `json:"code"`
	BytesRead   int64  `json:"bytesRead"`
	ChunksAcked int64  `json:"chunksAcknowledged"`
	SHA256      string `json:"sha256"`
}

// historyOf returns the run history entry of path, if the endpoint lists
// it among its latest 500 runs.
func (e *endpoint) historyOf(path string) (historyRun, bool) {
	st, b, _ := e.do("GET", "/traces/history?limit=500", "", nil)
	if st != http.StatusOK {
		return historyRun{}, false
	}
	var page struct {
		Runs []historyRun `json:"runs"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		e.t.Fatalf("decoding the history %s: %v", b, err)
	}
	for _, r := range page.Runs {
		if r.FilePath == path {
			return r, true
		}
	}
	return historyRun{}, false
}

// waitHistory waits until the history lists path in state and returns
// the entry.
func (e *endpoint) waitHistory(path, state string, within time.Duration) historyRun {
	e.t.Helper()
	var r historyRun
	eventually(e.t, within, "the history to list "+path+" as "+state, func() bool {
		var ok bool
		r, ok = e.historyOf(path)
		return ok && r.State == state
	})
	return r
}

// noTracerLeft requires that no process runs the script of path any more.
func noTracerLeft(t *testing.T, path string) {
	t.Helper()
	eventually(t, 10*time.Second, "no process running "+path, func() bool { return len(processesRunning(path)) == 0 })
}
