package platformtest

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// handle serves every request: fault injection, then the checks, then
// recording, then the (optionally delayed) answer.
func (p *Platform) handle(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if status, retryAfter, delay, ok := p.takeFailure(); ok {
		p.injected.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		p.sleep(r, delay)
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		writeJSON(w, status, `{"error":"injected failure"}`)
		return
	}
	status, msg := p.record(r)
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	p.sleep(r, delay)
	if status != http.StatusOK {
		writeJSON(w, status, `{"error":`+strconv.Quote(msg)+`}`)
		return
	}
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

// takeFailure consumes one injected failure, if any is pending.
func (p *Platform) takeFailure() (status, retryAfter int, delay time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failNext <= 0 {
		return 0, 0, 0, false
	}
	p.failNext--
	return p.failStatus, p.retryAfter, p.delay, true
}

// sleep waits d or until the request is abandoned.
func (p *Platform) sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// record checks one request and records it. It returns the status to
// answer and, for a non-200, the reason.
func (p *Platform) record(r *http.Request) (int, string) {
	route := p.prefix + "/submit"
	if r.URL.Path != route {
		return p.reject(http.StatusNotFound, "request to %s %s, want PUT %s", r.Method, r.URL.Path, route)
	}
	if r.Method != http.MethodPut {
		return p.reject(http.StatusMethodNotAllowed, "request with method %s, want PUT", r.Method)
	}
	if err := p.checkAuth(r.Header.Values("Authorization")); err != nil {
		return p.reject(http.StatusUnauthorized, "bad Authorization: %v", err)
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return p.reject(http.StatusUnsupportedMediaType, "Content-Type %q, want application/json", ct)
	}
	body, err := readBody(r, p.maxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return p.reject(http.StatusRequestEntityTooLarge, "body over %d bytes", p.maxBody)
		}
		return http.StatusBadRequest, fmt.Sprintf("reading body: %v", err) // client went away: not a violation
	}
	m, err := parseMessage(body)
	if err != nil {
		return p.reject(http.StatusBadRequest, "bad body %s: %v", clip(body), err)
	}
	var sum uint64
	if p.discard && m.kind == kindChunk {
		sum = maphash.Bytes(p.seed, m.data)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notify()
	t, ok := p.traces[m.trace]
	if !ok {
		t = newTraceState(m.trace)
		p.traces[m.trace] = t
		p.order = append(p.order, m.trace)
	}
	t.requests++
	switch m.kind {
	case kindStart:
		p.recordStart(t)
	case kindChunk:
		p.recordChunk(t, m, sum)
	case kindFinished:
		p.recordFinished(t, m)
	}
	return http.StatusOK, ""
}

// readBody reads the whole body, in one allocation when its length is
// known.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength < 0 {
		return io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// reject records a violation and returns the answer for it.
func (p *Platform) reject(status int, format string, args ...any) (int, string) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.violate("%d: %s", status, msg)
	return status, msg
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// checkAuth verifies the single Authorization value, remembering values
// that verified.
func (p *Platform) checkAuth(values []string) error {
	if len(values) != 1 {
		return fmt.Errorf("%d Authorization headers, want 1", len(values))
	}
	h := values[0]
	p.mu.Lock()
	ok := p.verified[h]
	p.mu.Unlock()
	if ok {
		return nil
	}
	p.verifications.Add(1)
	if err := Verify(h, p.uuid, p.secret); err != nil {
		return err
	}
	p.mu.Lock()
	p.verified[h] = true
	p.mu.Unlock()
	return nil
}

// The record* functions apply one message to a trace; mu is held.

func (p *Platform) recordStart(t *traceState) {
	switch {
	case t.finished != nil:
		p.violate("trace %s: start after finished", t.path)
	case t.chunkCount > 0:
		p.violate("trace %s: start after %d chunks", t.path, t.chunkCount)
	case t.started:
		t.duplicates++
	default:
		t.started = true
	}
}

func (p *Platform) recordChunk(t *traceState, m *message, sum uint64) {
	switch {
	case !t.started:
		p.violate("trace %s: chunk %d before start", t.path, m.no)
	case t.finished != nil:
		p.violate("trace %s: chunk %d after finished", t.path, m.no)
	case m.no > t.chunkCount:
		p.violate("trace %s: chunk %d arrived when %d was due (gap)", t.path, m.no, t.chunkCount)
	case m.no < t.chunkCount:
		same := false
		if p.discard {
			same = t.sums[m.no] == sum
		} else {
			same = bytes.Equal(t.chunk(m.no), m.data)
		}
		if same {
			t.duplicates++
		} else {
			p.violate("trace %s: chunk %d repeated with different bytes", t.path, m.no)
		}
	case len(m.data) == 0:
		p.violate("trace %s: chunk %d is empty", t.path, m.no)
	default:
		if p.discard {
			t.sums = append(t.sums, sum)
		} else {
			t.data = append(t.data, m.data...)
			t.ends = append(t.ends, len(t.data))
		}
		t.hash.Write(m.data)
		t.chunkCount++
		t.bytes += int64(len(m.data))
	}
}

func (p *Platform) recordFinished(t *traceState, m *message) {
	switch {
	case !t.started:
		p.violate("trace %s: finished before start", t.path)
		return
	case t.finished != nil:
		if *t.finished == m.fin {
			t.duplicates++
		} else {
			p.violate("trace %s: second finished message differs: %+v, first %+v", t.path, m.fin, *t.finished)
		}
		return
	}
	f := m.fin
	t.finished = &f
	if m.hasChunks && f.Chunks != t.chunkCount {
		p.violate("trace %s: finished says %d chunks, %d arrived", t.path, f.Chunks, t.chunkCount)
	}
	if m.hasBytes && f.Bytes != t.bytes {
		p.violate("trace %s: finished says %d bytes, %d arrived", t.path, f.Bytes, t.bytes)
	}
	if m.hasSHA256 {
		if got := fmt.Sprintf("%x", t.hash.Sum(nil)); f.SHA256 != got {
			p.violate("trace %s: finished says sha256 %s, arrived bytes hash to %s", t.path, f.SHA256, got)
		}
	}
}
