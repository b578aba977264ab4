package tests

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

// TestAuthFloodOfExpensiveHeaders sends many concurrent requests whose
// headers ask for 4 GiB argon2 hashes: each is refused with 401 before any
// hashing, the endpoint's memory does not grow with them, and honest
// requests keep being served meanwhile.
func TestAuthFloodOfExpensiveHeaders(t *testing.T) {
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"]})
	before := procStatusKiB(e.PID(), "VmRSS")
	const workers, perWorker = 16, 25
	costly := testUUID + "$argon2id$v=19$m=4194304,t=1000,p=16$lxQKK/JGRLqc01yCPpJvSw$FUjxqpeiwORBGcgzPSytgHf1LTdbMLbGOyCqg61BJoM"
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				st, _, _ := e.do("GET", "/traces", "", map[string]string{"Authorization": costly})
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}
		}()
	}
	// Honest requests during the flood.
	for i := 0; i < 20; i++ {
		if st, body, _ := e.do("GET", "/heartbeat", "", nil); st != http.StatusOK {
			t.Errorf("honest request during the flood: %d %s", st, body)
		}
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized] != workers*perWorker {
		t.Errorf("statuses %v, want all %d refused with 401", statuses, workers*perWorker)
	}
	after := procStatusKiB(e.PID(), "VmRSS")
	// One honoured 4 GiB hash would show; the flood must cost next to
	// nothing. (The race detector's shadow memory inflates RSS a little.)
	if before < 0 || after-before > 32<<10 {
		t.Errorf("endpoint RSS grew from %d KiB to %d KiB during the flood", before, after)
	}
	t.Logf("RSS %d KiB -> %d KiB", before, after)
}

// procStatusKiB reads a "Vm...:" line of /proc/PID/status in KiB, or -1.
func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kib int64
			fmt.Sscanf(v, "%d", &kib)
			return kib
		}
	}
	return -1
}

// TestAuthFloodOfMaxCostHeaders floods the real endpoint from 40 loopback
// clients for 10 s with headers of the right UUID, the largest cost the
// default window accepts (m=16384, t=6, p=4) and a wrong secret, each with
// a fresh salt so nothing is shared or cached. The endpoint (built with
// -race, which costs memory of its own) must keep its RSS within 100 MiB of
// what it was when the flood started, and honest requests with NEW headers
// (fresh salts, so not cached) sent during the flood must be answered 200 or
// 503 within auth.max-wait plus slack: the wait for a verification slot is
// bounded, never a queue behind the flood.
func TestAuthFloodOfMaxCostHeaders(t *testing.T) {
	const (
		clients  = 40
		flood    = 10 * time.Second
		maxWait  = 500 * time.Millisecond
		slack    = 1500 * time.Millisecond // the 2 s of the contract
		maxGrowK = 100 << 10               // KiB
	)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], Extra: fmt.Sprintf("\n[auth]\nmax-wait = %q\n", maxWait)})
	tr := &http.Transport{MaxIdleConnsPerHost: clients + 8, MaxConnsPerHost: clients + 8}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(header string) (int, time.Duration, error) {
		req, err := http.NewRequest("GET", e.URL+"/heartbeat", nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", header)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, time.Since(start), err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, time.Since(start), nil
	}
	costly := func() string {
		salt, hash := make([]byte, 16), make([]byte, 32)
		rand.Read(salt)
		rand.Read(hash)
		return testUUID + auth.Params{Variant: auth.Argon2id, Memory: 16384, Iterations: 6, Parallelism: 4}.Encode(salt, hash)
	}
	// Warm up the endpoint's HTTP path, then take the baseline.
	if st, _, err := get(authHeader); st != http.StatusOK {
		t.Fatalf("warm-up: %d %v", st, err)
	}
	pid := e.PID()
	baseRSS, baseHWM := procStatusKiB(pid, "VmRSS"), procStatusKiB(pid, "VmHWM")
	if baseRSS < 0 {
		t.Fatalf("cannot read /proc/%d/status", pid)
	}

	stop := time.Now().Add(flood)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				st, _, err := get(costly())
				mu.Lock()
				if err != nil {
					statuses[-1]++
				} else {
					statuses[st]++
				}
				mu.Unlock()
			}
		})
	}
	// Sample RSS while the flood runs, and send honest new headers.
	peakRSS := baseRSS
	var honest []time.Duration
	honestStatuses := map[int]int{}
	nextHonest := time.Now().Add(time.Second)
	for time.Now().Before(stop) {
		if rss := procStatusKiB(pid, "VmRSS"); rss > peakRSS {
			peakRSS = rss
		}
		if time.Now().After(nextHonest) {
			h, err := auth.Header(testUUID, testSecret) // a fresh salt: never cached
			if err != nil {
				t.Fatal(err)
			}
			st, d, err := get(h)
			if err != nil {
				t.Errorf("honest request during the flood: %v", err)
			}
			honest = append(honest, d)
			honestStatuses[st]++
			if st != http.StatusOK && st != http.StatusServiceUnavailable {
				t.Errorf("honest new header during the flood: status %d, want 200 or 503", st)
			}
			if d > maxWait+slack {
				t.Errorf("honest new header answered after %s, want within auth.max-wait %s + %s", d, maxWait, slack)
			}
			nextHonest = time.Now().Add(time.Second)
		}
		time.Sleep(100 * time.Millisecond) // the sampling period, not a wait for a condition
	}
	wg.Wait()
	endRSS, endHWM := procStatusKiB(pid, "VmRSS"), procStatusKiB(pid, "VmHWM")
	t.Logf("flood: %d clients for %s, statuses %v; honest new headers: %v %v", clients, flood, statuses, honestStatuses, honest)
	t.Logf("RSS KiB: base %d, peak sampled %d (+%d), end %d; VmHWM KiB: base %d, end %d (+%d)",
		baseRSS, peakRSS, peakRSS-baseRSS, endRSS, baseHWM, endHWM, endHWM-baseHWM)
	if statuses[http.StatusOK] > 0 || statuses[-1] > 0 {
		t.Errorf("flood statuses %v: want only 401 and 503", statuses)
	}
	if statuses[http.StatusUnauthorized] == 0 {
		t.Errorf("flood statuses %v: no header was verified at all", statuses)
	}
	if growth := max(peakRSS, endRSS) - baseRSS; growth > maxGrowK {
		t.Errorf("RSS grew by %d KiB during the flood, want under %d KiB", growth, maxGrowK)
	}
	if len(honest) < 3 {
		t.Errorf("only %d honest requests during the flood", len(honest))
	}
	// After the flood the endpoint serves honest callers at once.
	if st, _, err := get(authHeader); st != http.StatusOK {
		t.Errorf("after the flood: %d %v", st, err)
	}
}
