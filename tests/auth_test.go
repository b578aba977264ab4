package tests

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// rssKiB is the resident memory of pid in KiB (VmRSS), or -1.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kib int64
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kib)
			return kib
		}
	}
	return -1
}

// TestAuthFloodOfExpensiveHeaders sends many concurrent requests whose
// headers ask for 4 GiB argon2 hashes: each is refused with 401 before any
// hashing, the endpoint's memory does not grow with them, and honest
// requests keep being served meanwhile.
func TestAuthFloodOfExpensiveHeaders(t *testing.T) {
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"]})
	before := rssKiB(e.PID())
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
	after := rssKiB(e.PID())
	// One honoured 4 GiB hash would show; the flood must cost next to
	// nothing. (The race detector's shadow memory inflates RSS a little.)
	if before < 0 || after-before > 32<<10 {
		t.Errorf("endpoint RSS grew from %d KiB to %d KiB during the flood", before, after)
	}
	t.Logf("RSS %d KiB -> %d KiB", before, after)
}
