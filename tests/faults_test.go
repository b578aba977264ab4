package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/persistence/persistencetest"
	"github.com/lambda-endpoint/lambda-endpoint/platform/platformtest"
)

// The fault-injection tests of issue 4: the real endpoint process, the fake
// tracer and a test platform, with the platform, the endpoint process, its
// spool on disk and its database connection broken on purpose. Every test
// judges the outcome by what the platform reassembled (bytes, chunk count,
// SHA-256, the finished message) and by the platform's protocol checks
// (newPlatform fails the test on any violation), never by log lines.

// TestFaultPlatformOutage stops the platform for 10 s in the middle of a
// trace: the endpoint keeps reading into its spool, and once the platform
// is back every line arrives exactly once, in order, then finished.
func TestFaultPlatformOutage(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})
	const lines = 200
	s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 50ms", lines))), 600)

	before := waitRecord(t, p, s.FilePath, 30*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 2 })
	p.Stop()
	time.Sleep(10 * time.Second)
	ri, st := e.info(s.FilePath)
	if st != http.StatusOK {
		t.Fatalf("the trace is not listed during the outage: %d", st)
	}
	if ri.BytesRead <= ri.BytesSubmitted {
		t.Errorf("during the outage the endpoint read %d bytes and submitted %d: nothing waits in the spool", ri.BytesRead, ri.BytesSubmitted)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}

	rec := waitFinished(t, p, s.FilePath, 90*time.Second)
	checkSeqs(t, rec.Data, lines, false)
	checkProof(t, rec)
	if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
		t.Errorf("finished %+v, want reason completed and code 0", f)
	}
	if rec.ChunkCount <= before.ChunkCount {
		t.Errorf("no chunk after the outage (%d before, %d in all)", before.ChunkCount, rec.ChunkCount)
	}
	t.Logf("%d chunks (%d before the outage), %d bytes, %d duplicates", rec.ChunkCount, before.ChunkCount, rec.Bytes, rec.Duplicates)
	waitSpoolRemoved(t, spoolDir(e.DataDir, s.FilePath))
}

// TestFaultPlatformRefusesAndSlow has the platform refuse requests (503
// with Retry-After, 429, 400) and answer slowly: everything is delivered.
func TestFaultPlatformRefusesAndSlow(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})

	t.Run("503 with Retry-After", func(t *testing.T) {
		id := e.putTemplate(fakeTemplate("lines 30 20ms"))
		p.SetRetryAfter(1)
		defer p.SetRetryAfter(0)
		injected := p.Stats().Injected
		p.FailNext(8, http.StatusServiceUnavailable)
		s := e.start("BPF", id, 600)
		rec := waitFinished(t, p, s.FilePath, 60*time.Second)
		checkSeqs(t, rec.Data, 30, false)
		checkProof(t, rec)
		if n := p.Stats().Injected - injected; n != 8 {
			t.Errorf("%d requests refused, want 8", n)
		}
		if rec.Duplicates != 0 {
			t.Errorf("%d duplicates: a refused request is not delivered, so nothing needed a resend", rec.Duplicates)
		}
		if rec.Finished.Reason != "completed" {
			t.Errorf("finished %+v", rec.Finished)
		}
	})

	t.Run("429 then 400 mid-trace", func(t *testing.T) {
		id := e.putTemplate(fakeTemplate("lines 60 20ms"))
		injected := p.Stats().Injected
		p.FailNext(3, http.StatusTooManyRequests)
		s := e.start("BPF", id, 600)
		waitRecord(t, p, s.FilePath, 30*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 1 })
		p.FailNext(3, http.StatusBadRequest)
		rec := waitFinished(t, p, s.FilePath, 60*time.Second)
		checkSeqs(t, rec.Data, 60, false)
		checkProof(t, rec)
		if n := p.Stats().Injected - injected; n != 6 {
			t.Errorf("%d requests refused, want 6", n)
		}
	})

	t.Run("answers after 5 s", func(t *testing.T) {
		id := e.putTemplate(fakeTemplate("lines 5 10ms"))
		p.SetDelay(5 * time.Second)
		defer p.SetDelay(0)
		s := e.start("BPF", id, 600)
		rec := waitFinished(t, p, s.FilePath, 2*time.Minute)
		checkSeqs(t, rec.Data, 5, false)
		checkProof(t, rec)
		// The platform records a request before its delay: an attempt
		// that gave up before the answer came would show as a
		// duplicate. submit-timeout (default 30 s) outlasts 5 s.
		if rec.Duplicates != 0 {
			t.Errorf("%d duplicate requests: attempts timed out although the platform answers within 5 s", rec.Duplicates)
		}
	})
}

// TestFaultCrashMidFlood kills the endpoint with SIGKILL in the middle of a
// flood, then restarts it on the same data directory: everything read
// before the crash is delivered, then finished with reason interrupted, and
// the tracer did not survive. With the platform down nothing was sent
// before the crash; with it up, the crash lands mid-delivery and at most
// the one chunk in flight (its acknowledgement lost) is sent twice.
func TestFaultCrashMidFlood(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name          string
		platformUp    bool
		maxDuplicates int
	}{
		{"platform down", false, 0},
		{"platform up", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlatform(t)
			if !c.platformUp {
				p.Stop()
			}
			data, db := t.TempDir(), stores(t)[persistencetest.SQLite]
			e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
			s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("flood %d", 1<<30))), 600)
			if c.platformUp {
				waitRecord(t, p, s.FilePath, 60*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 20 })
			}
			ri := e.waitInfo(s.FilePath, 60*time.Second, "4 MiB of the flood to be read", func(ri messages.RunningInfo) bool {
				return ri.BytesRead >= 4<<20 && ri.PID > 0
			})
			e.Kill()
			before := p.Trace(s.FilePath)
			if ri.State != messages.StateRunning {
				t.Fatalf("the flood was %q when the endpoint was killed, want running", ri.State)
			}
			eventually(t, 10*time.Second, "the tracer to die with the endpoint", func() bool { return !processAlive(ri.PID) })
			noTracerLeft(t, s.FilePath)

			if err := p.Restart(); err != nil {
				t.Fatal(err)
			}
			e2 := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
			rec := waitFinished(t, p, s.FilePath, 3*time.Minute)
			if f := rec.Finished; f.Reason != "interrupted" || f.Code != 137 {
				t.Errorf("finished %+v, want reason interrupted and code 137", f)
			}
			if rec.Duplicates > c.maxDuplicates {
				t.Errorf("%d duplicates, want at most %d: only a chunk whose acknowledgement was lost may be sent again", rec.Duplicates, c.maxDuplicates)
			}
			if rec.Bytes < ri.BytesRead {
				t.Errorf("delivered %d bytes; the endpoint had read %d before it was killed", rec.Bytes, ri.BytesRead)
			}
			if rec.Bytes >= 1<<30 {
				t.Errorf("delivered the whole flood (%d bytes): the tracer outlived the crash", rec.Bytes)
			}
			checkFloodPrefix(t, rec.Data)
			checkProof(t, rec)
			t.Logf("read %s before the kill, %d chunks delivered before it; delivered %s in %d chunks, %d duplicates",
				mib(ri.BytesRead), before.ChunkCount, mib(rec.Bytes), rec.ChunkCount, rec.Duplicates)
			waitSpoolRemoved(t, spoolDir(data, s.FilePath))
			h := e2.waitHistory(s.FilePath, "interrupted", 30*time.Second)
			if h.Reason != "interrupted" || h.SHA256 != rec.SHA256 || h.ChunksAcked != rec.ChunkCount {
				t.Errorf("history %+v; the platform holds %d chunks with sha256 %s", h, rec.ChunkCount, rec.SHA256)
			}
		})
	}
}

// TestFaultCorruptSpoolTail damages the spool of a trace on disk while the
// endpoint is down (killed with the platform unreachable); the restarted
// endpoint starts normally, delivers the valid prefix and finishes.
func TestFaultCorruptSpoolTail(t *testing.T) {
	requireRoot(t)
	damages := []struct {
		name string
		// damage breaks the segment file seg whose records were recs and
		// returns how many records stay valid.
		damage func(t *testing.T, seg string, recs []spoolRecord) int
	}{
		{"last record cut short", func(t *testing.T, seg string, recs []spoolRecord) int {
			last := recs[len(recs)-1]
			if err := os.Truncate(seg, last.Off+recordHeaderLen+int64(len(last.Data))/2); err != nil {
				t.Fatal(err)
			}
			return len(recs) - 1
		}},
		{"byte flipped in the last record", func(t *testing.T, seg string, recs []spoolRecord) int {
			last := recs[len(recs)-1]
			flipByte(t, seg, last.Off+recordHeaderLen+int64(len(last.Data))/2)
			return len(recs) - 1
		}},
		{"byte flipped in a middle record", func(t *testing.T, seg string, recs []spoolRecord) int {
			// Nothing after damage can be trusted: the numbering must
			// stay gapless, so the valid prefix ends before it.
			mid := len(recs) / 2
			flipByte(t, seg, recs[mid].Off+recordHeaderLen+int64(len(recs[mid].Data))/3)
			return mid
		}},
		{"record header damaged", func(t *testing.T, seg string, recs []spoolRecord) int {
			last := recs[len(recs)-1]
			flipByte(t, seg, last.Off+13) // the length field
			return len(recs) - 1
		}},
		{"garbage appended", func(t *testing.T, seg string, recs []spoolRecord) int {
			// A plausible header (magic, the next number, a length) with
			// a wrong checksum, then bytes that are no record at all.
			g := []byte("SPCK")
			g = append(g, byte(len(recs)), 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef)
			g = append(g, bytes.Repeat([]byte{0xa5, 0x00, 0x5a}, 1000)...)
			f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(g); err != nil {
				t.Fatal(err)
			}
			return len(recs)
		}},
	}
	for _, d := range damages {
		t.Run("finished trace/"+d.name, func(t *testing.T) {
			const size = 3 << 20
			p := newPlatform(t)
			p.Stop()
			data, db := t.TempDir(), stores(t)[persistencetest.SQLite]
			e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
			s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("flood %d", size))), 600)
			dir := spoolDir(data, s.FilePath)
			e.waitInfo(s.FilePath, 60*time.Second, "the flood to end", func(ri messages.RunningInfo) bool {
				return ri.State == messages.StateDelivering
			})
			// The final state is on disk before the crash, so the restart
			// reports the real reason, not interrupted.
			eventually(t, 10*time.Second, "the final state in the spool's meta", func() bool {
				b, _ := os.ReadFile(filepath.Join(dir, "meta"))
				return bytes.Contains(b, []byte(`"final"`))
			})
			e.Kill()

			seg := lastSegment(t, dir)
			if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 1 {
				t.Fatalf("%d segment files for %d bytes; the test assumes one", len(segs), size)
			}
			recs := segmentRecords(t, seg)
			if all := concatRecords(recs); !bytes.Equal(all, floodOutput(size)) {
				t.Fatalf("the spool holds %d bytes that are not the %d bytes of the flood", len(all), size)
			}
			if len(recs) < 2 {
				t.Fatalf("only %d records", len(recs))
			}
			keep := d.damage(t, seg, recs)
			want := concatRecords(recs[:keep])

			if err := p.Restart(); err != nil {
				t.Fatal(err)
			}
			e2 := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
			rec := waitFinished(t, p, s.FilePath, 60*time.Second)
			if !bytes.Equal(rec.Data, want) {
				t.Errorf("delivered %d bytes in %d chunks, want the %d valid records' %d bytes", rec.Bytes, rec.ChunkCount, keep, len(want))
				checkFloodPrefix(t, rec.Data)
			}
			checkProof(t, rec)
			if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
				t.Errorf("finished %+v, want the real end: reason completed, code 0", f)
			}
			if rec.Duplicates != 0 {
				t.Errorf("%d duplicates", rec.Duplicates)
			}
			if bad := unreadableSpools(data); len(bad) > 0 {
				t.Errorf("spools moved aside as unreadable: %v", bad)
			}
			waitSpoolRemoved(t, dir)
			if st, _, _ := e2.do("GET", "/heartbeat", "", nil); st != http.StatusOK {
				t.Errorf("restarted endpoint unhealthy: %d", st)
			}
		})
	}

	t.Run("running trace/last record cut short", func(t *testing.T) {
		p := newPlatform(t)
		p.Stop()
		data, db := t.TempDir(), stores(t)[persistencetest.SQLite]
		e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
		s := e.start("BPF", e.putTemplate(fakeTemplate("lines 100000 2ms")), 600)
		dir := spoolDir(data, s.FilePath)
		eventually(t, 60*time.Second, "three chunks in the spool", func() bool {
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) == 0 {
				return false
			}
			recs, _ := parseSegment(segs[len(segs)-1])
			return len(recs) >= 3
		})
		ri, _ := e.info(s.FilePath)
		e.Kill()
		eventually(t, 10*time.Second, "the tracer to die with the endpoint", func() bool { return !processAlive(ri.PID) })

		seg := lastSegment(t, dir)
		recs := segmentRecords(t, seg)
		last := recs[len(recs)-1]
		if err := os.Truncate(seg, last.Off+recordHeaderLen+int64(len(last.Data))/2); err != nil {
			t.Fatal(err)
		}
		valid := concatRecords(recs[:len(recs)-1])

		if err := p.Restart(); err != nil {
			t.Fatal(err)
		}
		startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
		rec := waitFinished(t, p, s.FilePath, 60*time.Second)
		if !bytes.HasPrefix(rec.Data, valid) {
			t.Errorf("delivered %d bytes that do not start with the %d bytes of the valid records", rec.Bytes, len(valid))
		}
		n := checkSeqs(t, rec.Data, -1, true)
		checkProof(t, rec)
		if f := rec.Finished; f.Reason != "interrupted" {
			t.Errorf("finished %+v, want reason interrupted", f)
		}
		if bad := unreadableSpools(data); len(bad) > 0 {
			t.Errorf("spools moved aside as unreadable: %v", bad)
		}
		t.Logf("valid records: %d bytes; delivered %d bytes (%d lines); read before the kill: at least %d",
			len(valid), rec.Bytes, n, ri.BytesRead)
	})
}

// flipByte inverts the byte at off in file.
func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFaultMemoryBoundedThroughOutage floods 100 MB while the platform is
// down: the endpoint's resident memory stays within 64 MB of its idle
// size, during the outage and during the delivery afterwards, and all of
// it arrives.
func TestFaultMemoryBoundedThroughOutage(t *testing.T) {
	requireRoot(t)
	const size = 100 << 20
	const bound = 64 << 20
	p := newPlatform(t, platformtest.WithDiscardData())
	p.Stop()
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL()})
	id := e.putTemplate(fakeTemplate(fmt.Sprintf("flood %d", size)))
	var idle int64
	for range 10 {
		idle = max(idle, rssBytes(e.PID()))
		time.Sleep(100 * time.Millisecond)
	}
	if idle == 0 {
		t.Fatalf("cannot read the RSS of pid %d", e.PID())
	}
	rss := sampleRSS(t, e.PID(), 50*time.Millisecond)

	s := e.start("BPF", id, 600)
	e.waitInfo(s.FilePath, 5*time.Minute, "the 100 MB flood to be read", func(ri messages.RunningInfo) bool {
		return ri.BytesRead >= size && ri.State == messages.StateDelivering
	})
	time.Sleep(2 * time.Second) // the outage goes on with everything spooled
	outage, n := rss.Max()
	t.Logf("idle RSS %s; during the flood and outage at most %s (%d samples)", mib(idle), mib(outage), n)
	if outage-idle > bound {
		t.Errorf("during the outage the RSS reached %s, %s above idle (%s); want at most %s more",
			mib(outage), mib(outage-idle), mib(idle), mib(bound))
	}

	rss.Reset()
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	rec := waitFinished(t, p, s.FilePath, 5*time.Minute)
	delivery, n := rss.Max()
	t.Logf("during the delivery at most %s (%d samples)", mib(delivery), n)
	if delivery-idle > bound {
		t.Errorf("during the delivery the RSS reached %s, %s above idle (%s); want at most %s more",
			mib(delivery), mib(delivery-idle), mib(idle), mib(bound))
	}
	h := sha256.New()
	for seq := 0; seq < size/floodLineLen; seq++ {
		h.Write(floodLine(seq))
	}
	if want := hex.EncodeToString(h.Sum(nil)); rec.Bytes != size || rec.SHA256 != want {
		t.Errorf("platform holds %d bytes with sha256 %s; the flood was %d bytes with sha256 %s", rec.Bytes, rec.SHA256, size, want)
	}
	checkProof(t, rec)
	if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
		t.Errorf("finished %+v, want reason completed and code 0", f)
	}
	waitSpoolRemoved(t, spoolDir(e.DataDir, s.FilePath))
}

// TestFaultSpoolFull floods 20 MB into a 1 MiB spool cap with the platform
// down: the trace is stopped with reason spool-full (visible in its
// RunningInfo), and the spooled part is delivered once the platform is
// back.
func TestFaultSpoolFull(t *testing.T) {
	requireRoot(t)
	const spoolMax = 1 << 20
	const chunk = 51200
	p := newPlatform(t)
	p.Stop()
	e := startEndpoint(t, endpointOptions{
		DatabaseURL: stores(t)[persistencetest.SQLite], PlatformURL: p.URL(), ChunkSize: chunk,
		Extra: fmt.Sprintf("spool-max-bytes = %d", spoolMax),
	})
	s := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("flood %d", 20<<20))), 600)
	ri := e.waitInfo(s.FilePath, 60*time.Second, "the trace to be stopped for spool-full", func(ri messages.RunningInfo) bool {
		return ri.Reason == "spool-full"
	})
	ri = e.waitInfo(s.FilePath, 60*time.Second, "the stopped trace to be delivering", func(ri messages.RunningInfo) bool {
		return ri.State == messages.StateDelivering
	})
	if ri.Reason != "spool-full" {
		t.Errorf("delivering trace shows reason %q, want spool-full", ri.Reason)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if f := rec.Finished; f.Reason != "spool-full" {
		t.Errorf("finished %+v, want reason spool-full", f)
	}
	// The bytes read after the spool refused them are counted in finished.
	if f := rec.Finished; !regexp.MustCompile(`\b[1-9][0-9]* bytes of output dropped`).MatchString(f.Stderr) {
		t.Errorf("finished stderr %q does not count the dropped bytes", tail(f.Stderr, 300))
	}
	if rec.Bytes > spoolMax || rec.Bytes <= spoolMax-chunk {
		t.Errorf("delivered %d bytes; want the spool's share of the flood, between %d and %d", rec.Bytes, spoolMax-chunk, spoolMax)
	}
	checkFloodPrefix(t, rec.Data)
	checkProof(t, rec)
	t.Logf("read %s, delivered %s in %d chunks; finished code %d", mib(ri.BytesRead), mib(rec.Bytes), rec.ChunkCount, rec.Finished.Code)
	waitSpoolRemoved(t, spoolDir(e.DataDir, s.FilePath))
}

// TestFaultDatabaseCut cuts the endpoint's PostgreSQL connection (a TCP
// proxy in between): the template routes answer 503 with a JSON error, a
// running trace keeps running and delivering, and the routes recover by
// themselves once the database is reachable again.
func TestFaultDatabaseCut(t *testing.T) {
	requireRoot(t)
	proxy := persistencetest.NewProxy(t, stores(t)[persistencetest.Postgres])
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: proxy.URL(), PlatformURL: p.URL()})
	const lines, shortLines = 200, 60
	id := e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 50ms", lines)))
	s := e.start("BPF", id, 600)
	waitRecord(t, p, s.FilePath, 30*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= 1 })
	// A short trace that ends while the database is away.
	short := e.start("BPF", e.putTemplate(fakeTemplate(fmt.Sprintf("lines %d 50ms", shortLines))), 600)

	proxy.Close()
	unavailable := func(method, path, body string) {
		t.Helper()
		var st int
		var b []byte
		var ct string
		eventually(t, 30*time.Second, method+" "+path+" to answer 503", func() bool {
			st, b, ct = e.do(method, path, body, nil)
			return st == http.StatusServiceUnavailable
		})
		var msg struct {
			Error string `json:"error"`
		}
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &msg) != nil || msg.Error == "" {
			t.Errorf("%s %s: 503 with Content-Type %q and body %q, want a JSON error", method, path, ct, b)
		}
	}
	unavailable("GET", "/traces", "")
	unavailable("PUT", "/trace", fakeTemplate("lines 1 1ms"))
	unavailable("POST", "/trace/start", fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":60}`, id))
	unavailable("GET", "/traces/history", "")

	rec := waitFinished(t, p, short.FilePath, 60*time.Second)
	checkSeqs(t, rec.Data, shortLines, false)
	checkProof(t, rec)
	if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
		t.Errorf("short trace finished %+v during the outage, want reason completed and code 0", f)
	}

	during := p.Trace(s.FilePath).ChunkCount
	waitRecord(t, p, s.FilePath, 30*time.Second, func(r platformtest.TraceRecord) bool { return r.ChunkCount >= during+2 })
	if ri, st := e.info(s.FilePath); st != http.StatusOK || ri.State != messages.StateRunning {
		t.Errorf("during the database outage the trace is %d %q, want running", st, ri.State)
	}

	proxy.Reopen()
	eventually(t, 60*time.Second, "GET /traces to recover", func() bool {
		st, b, _ := e.do("GET", "/traces", "", nil)
		return st == http.StatusOK && bytes.Contains(b, []byte(fmt.Sprintf(`"traceNo":%d`, id)))
	})
	e.putTemplate(fakeTemplate("lines 1 1ms"))
	// Nothing refused during the outage was stored: the long and the
	// short trace's templates and the one just stored.
	var templates []json.RawMessage
	e.mustJSON("GET", "/traces", "", http.StatusOK, &templates)
	if len(templates) != 3 {
		t.Errorf("%d templates after the outage, want 3 (a PUT answered 503 must store nothing)", len(templates))
	}

	rec = waitFinished(t, p, s.FilePath, 60*time.Second)
	checkSeqs(t, rec.Data, lines, false)
	checkProof(t, rec)
	if f := rec.Finished; f.Reason != "completed" || f.Code != 0 {
		t.Errorf("finished %+v, want reason completed and code 0", f)
	}
	// The run history is written again once the database is back.
	if h := e.waitHistory(s.FilePath, "finished", 30*time.Second); h.SHA256 != rec.SHA256 || h.ChunksAcked != rec.ChunkCount {
		t.Errorf("history %+v; the platform holds %d chunks with sha256 %s", h, rec.ChunkCount, rec.SHA256)
	}
	// Every started trace is a row of the runs table (issue 4), also one
	// whose rows fell due while the database was away.
	var h historyRun
	var listed bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if h, listed = e.historyOf(short.FilePath); listed && h.State == "finished" {
			break
		}
	}
	if !listed || h.State != "finished" {
		t.Errorf("the trace that started just before the database outage and finished during it is %q in the run history (listed %v), want finished: its history rows were dropped, not written once the database came back",
			h.State, listed)
	}
}

// TestFaultShutdownPlatformDown stops the endpoint with SIGTERM while the
// platform is down: it exits 0 within about shutdown-timeout with its
// tracer gone, and the next start delivers the spooled output and the
// finished message with reason shutdown.
func TestFaultShutdownPlatformDown(t *testing.T) {
	requireRoot(t)
	p := newPlatform(t)
	p.Stop()
	data, db := t.TempDir(), stores(t)[persistencetest.SQLite]
	e := startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
	s := e.start("BPF", e.putTemplate(fakeTemplate("lines 100000 20ms")), 600)
	ri := e.waitInfo(s.FilePath, 30*time.Second, "output read from the tracer", func(ri messages.RunningInfo) bool {
		return ri.BytesRead >= 200 && ri.PID > 0
	})
	began := time.Now()
	if code := e.Stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	took := time.Since(began) // reported, not asserted: Stop itself fails on a hang
	eventually(t, 10*time.Second, "the tracer to be gone", func() bool { return !processAlive(ri.PID) })
	noTracerLeft(t, s.FilePath)
	dir := spoolDir(data, s.FilePath)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the undelivered output is not in the spool: %v", err)
	}

	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	startEndpoint(t, endpointOptions{DatabaseURL: db, PlatformURL: p.URL(), DataDir: data})
	rec := waitFinished(t, p, s.FilePath, 60*time.Second)
	if f := rec.Finished; f.Reason != "shutdown" {
		t.Errorf("finished %+v, want reason shutdown", f)
	}
	n := checkSeqs(t, rec.Data, -1, false)
	if rec.Bytes < ri.BytesRead {
		t.Errorf("delivered %d bytes; the endpoint had read %d before SIGTERM", rec.Bytes, ri.BytesRead)
	}
	if rec.Duplicates != 0 {
		t.Errorf("%d duplicates: nothing reached the platform before the restart", rec.Duplicates)
	}
	checkProof(t, rec)
	t.Logf("stopped in %s; delivered %d lines, %d bytes; finished code %d", took.Round(time.Millisecond), n, rec.Bytes, rec.Finished.Code)
	waitSpoolRemoved(t, dir)
}
