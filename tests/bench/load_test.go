//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// loadResult is what one load run measured.
type loadResult struct {
	OK       int             // 200 answers
	Errors   int             // anything else, transport errors included
	FirstErr string          // the first error seen
	Elapsed  time.Duration   // from the first request to the last answer
	Lat      []time.Duration // latency of every 200 answer
}

// RPS is the rate of successful requests.
func (r loadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// runLoad sends GET url from clients concurrent keep-alive clients, each
// one request after the other, for dur or until header reports that no
// header is left. header(i) returns the Authorization value of the i-th
// request of the run.
func runLoad(url string, clients int, dur time.Duration, header func(i int64) (string, bool)) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	var (
		mu   sync.Mutex
		res  loadResult
		next int64
		wg   sync.WaitGroup
	)
	take := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next - 1
	}
	began := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			ok, errs, first := 0, 0, ""
			for ctx.Err() == nil {
				h, more := header(take())
				if !more {
					break
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", h)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				ok++
			}
			mu.Lock()
			res.OK += ok
			res.Errors += errs
			res.Lat = append(res.Lat, lat...)
			if res.FirstErr == "" {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(began)
	return res
}
