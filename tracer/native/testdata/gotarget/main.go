// Command gotarget is the Go program the native engine's tests trace.
//
//	gotarget N K
//
// calls work(i) for i = 0..N-1 (work returns i+1), then in each of K fresh
// goroutines deep(200): 201 nested calls whose frames outgrow the
// goroutine's first stack, so the stack is grown (runtime.morestack
// re-enters deep from its start) and copied while calls are pending, and
// the goroutines may run on any thread. It prints the sums and exits 0.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

var sink int

//go:noinline
func work(x int) int {
	sink += x
	return x + 1
}

//go:noinline
func deep(n int) int {
	var pad [512]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + 1 + int(pad[(n+1)%len(pad)])
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	k, _ := strconv.Atoi(os.Args[2])
	acc := 0
	for i := 0; i < n; i++ {
		acc += work(i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	d := 0
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := deep(200)
			mu.Lock()
			d += v
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Println(acc, d)
}
