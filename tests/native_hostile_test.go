package tests

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The attacks of issue 17 on the native engine, each against the real
// endpoint binary and kernel: a crafted Go binary that would make the
// planning of a start allocate without bound, a Go binary whose toolchain
// (and so its calling convention) cannot be established, and a traced path
// a local user keeps swapping between a FIFO and the real binary.

// hugeFunctionBytes is the crafted function's size: 16 MiB of NOPs.
const hugeFunctionBytes = 16 << 20

// craftHugeFunction copies the Go program bin with one more code section
// of 16 MiB of NOPs and a function symbol main.huge spanning all of it (its
// st_size patched in .symtab), as an attacker with platform credentials
// would plant it.
func craftHugeFunction(t *testing.T, bin string) string {
	t.Helper()
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Fatal("objcopy (binutils) is needed to craft the binary")
	}
	dir := t.TempDir()
	nops := filepath.Join(dir, "nops.bin")
	if err := os.WriteFile(nops, bytes.Repeat([]byte{0x90}, hugeFunctionBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "crafted")
	cmd := exec.Command(objcopy, "--add-section", ".lambdanop="+nops,
		"--set-section-flags", ".lambdanop=alloc,code,readonly,contents", "--change-section-address", ".lambdanop=0x40000000",
		"--add-symbol", "main.huge=.lambdanop:0,function,global", bin, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	symtab := f.SectionByType(elf.SHT_SYMTAB)
	f.Close()
	if err != nil || symtab == nil {
		t.Fatalf("reading the crafted binary's symbols: %v", err)
	}
	idx := -1
	for i, s := range syms {
		if s.Name == "main.huge" {
			idx = i + 1 // Symbols leaves out the null symbol 0
		}
	}
	if idx < 0 {
		t.Fatal("main.huge is not in the crafted binary")
	}
	fh, err := os.OpenFile(out, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Elf64_Sym: name 4, info 1, other 1, shndx 2, value 8, size 8.
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], hugeFunctionBytes)
	if _, err := fh.WriteAt(size[:], int64(symtab.Offset)+int64(idx)*24+16); err != nil {
		t.Fatal(err)
	}
	return out
}

// corruptBuildInfo copies the Go program bin with the magic of its build
// information overwritten: still Go to every other sign (.gopclntab,
// runtime.morestack), but its toolchain version cannot be read.
func corruptBuildInfo(t *testing.T, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	magic := []byte("\xff Go buildinf:")
	i := bytes.Index(b, magic)
	if i < 0 {
		t.Fatal("the Go program has no build information to corrupt")
	}
	copy(b[i:], "\xff Go XXXXXXXX:")
	out := filepath.Join(t.TempDir(), "corrupted")
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// peakRSS is the endpoint's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// errorOf is the "error" of an error answer.
func errorOf(body []byte) string {
	var res struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &res)
	return res.Error
}

// TestNativeHostileBinaries: a start of the native engine on a binary it
// cannot trace safely is a 400 that says why, answered before anything
// runs; the endpoint's memory stays bounded, nothing is left running, and
// the traced program is untouched (it runs to its checksum).
func TestNativeHostileBinaries(t *testing.T) {
	requireRoot(t)
	goBin := buildGoTarget(t, t.TempDir())
	huge := craftHugeFunction(t, goBin)
	corrupted := corruptBuildInfo(t, goBin)
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL()})
	hugeID := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["main.huge"],"traceType":"BPF"}`, huge))
	corruptID := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["main.work"],"traceType":"BPF"}`, corrupted))
	for _, tc := range []struct {
		name string
		id   int64
		mode string
		bin  string // run after the refusal: it must print its checksum
		want []string
	}{
		{"16 MiB function", hugeID, "events", "", []string{"main.huge", "beyond the native engine's bounds", "16777216 bytes of code, more than 1048576"}},
		{"16 MiB function, calls", hugeID, "calls", "", []string{"main.huge", "beyond the native engine's bounds"}},
		{"unreadable Go version, events", corruptID, "events", corrupted, []string{"Go binary whose build information cannot be read", "use engine bpftrace in mode events"}},
		{"unreadable Go version, calls", corruptID, "calls", corrupted, []string{"Go binary whose build information cannot be read"}},
		{"unreadable Go version, summary", corruptID, "summary", corrupted, []string{"Go binary whose build information cannot be read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := e.do("POST", "/trace/start",
				fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":60,"mode":%q,"engine":"native"}`, tc.id, tc.mode), nil)
			msg := errorOf(body)
			if st != http.StatusBadRequest {
				t.Errorf("status %d %s, want 400", st, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if tc.bin != "" {
				out, err := exec.Command(tc.bin).Output()
				if want := fmt.Sprintf("checksum %d\n", goChecksum()); err != nil || string(out) != want {
					t.Errorf("the Go program: %v, printed %q, want %q", err, out, want)
				}
			}
		})
	}
	var all []runningInfo
	e.mustJSON("GET", "/traces/running/all", "", http.StatusOK, &all)
	if len(all) != 0 {
		t.Errorf("refused starts left traces: %+v", all)
	}
	// The endpoint idles at about 40 MB; reading and disassembling the
	// crafted function whole took gigabytes.
	rss := peakRSS(t, e.PID())
	if rss > 256<<20 {
		t.Errorf("endpoint peak RSS %d MiB, want at most 256", rss>>20)
	}
	t.Logf("endpoint peak RSS %d MiB", rss>>20)
}

// swapLoop renames, over path and until stop is closed, a FIFO and a hard
// link of the real binary in turn: a local user racing the endpoint's
// opens of the traced path.
func swapLoop(t *testing.T, dir, path, real string, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		fifo, link := filepath.Join(dir, "fifo.tmp"), filepath.Join(dir, "link.tmp")
		for i := 0; ; i++ {
			select {
			case <-stop:
				os.Remove(fifo)
				os.Remove(link)
				if err := os.Link(real, link); err == nil {
					os.Rename(link, path) // the binary again, for the kills
				}
				return
			default:
			}
			var err error
			if i%2 == 0 {
				os.Remove(fifo)
				if err = syscall.Mkfifo(fifo, 0o644); err == nil {
					err = os.Rename(fifo, path)
				}
			} else {
				os.Remove(link)
				if err = os.Link(real, link); err == nil {
					err = os.Rename(link, path)
				}
			}
			if err != nil {
				t.Errorf("swapping the traced path: %v", err)
				return
			}
		}
	}()
}

// TestNativeSwappedPathFIFO: while the traced path keeps turning into a
// FIFO and back, every native start is answered (200, or 400 naming what it
// found), none stays "starting" (each is running or ended), kill stops
// every one and its finished message arrives, and SIGTERM ends the
// endpoint within shutdown-timeout + kill-grace. The engine opens the
// binary once, O_PATH first: nothing in a start blocks on a FIFO.
func TestNativeSwappedPathFIFO(t *testing.T) {
	requireRoot(t)
	real := buildC(t, "ntarget", nativeTarget)
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if err := os.Link(real, path); err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t)
	e := startEndpoint(t, endpointOptions{DatabaseURL: stores(t)["sqlite"], PlatformURL: p.URL(), Extra: "max-traces = 8"})
	id := e.putTemplate(fmt.Sprintf(`{"process":%q,"functions":["lambda_f"],"traceType":"BPF"}`, path))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	swapLoop(t, dir, path, real, stop, &wg)
	client := &http.Client{Timeout: 30 * time.Second}
	var accepted []string
	answers := map[int]int{}
	for range 24 {
		req, _ := http.NewRequest("POST", e.URL+"/trace/start",
			strings.NewReader(fmt.Sprintf(`{"traceT":"BPF","traceId":%d,"lasting":60,"engine":"native"}`, id)))
		req.Header.Set("Authorization", authHeader)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("a start was not answered: %v", err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		res.Body.Close()
		answers[res.StatusCode]++
		switch res.StatusCode {
		case http.StatusOK:
			var s started
			json.Unmarshal(buf.Bytes(), &s)
			accepted = append(accepted, s.FilePath)
		case http.StatusBadRequest, http.StatusTooManyRequests:
		default:
			t.Errorf("start: %d %s", res.StatusCode, buf.Bytes())
		}
		if len(accepted) == 8 {
			break // max-traces: the rest would be 429
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("answers by status: %v", answers)

	// None is stuck starting: each is running (attached) or has ended.
	for _, path := range accepted {
		eventually(t, 30*time.Second, "trace "+path+" to leave state starting", func() bool {
			var ri runningInfo
			st, b, _ := e.do("GET", "/trace/running?path="+path, "", nil)
			if st == http.StatusNotFound {
				return true
			}
			return st == http.StatusOK && json.Unmarshal(b, &ri) == nil && ri.State != "starting"
		})
	}
	for _, path := range accepted {
		e.mustJSON("POST", "/trace/kill", fmt.Sprintf(`{"killPath":%q}`, path), http.StatusOK, nil)
	}
	for _, path := range accepted {
		rec := waitFinished(t, p, path, 30*time.Second)
		if r := rec.Finished.Reason; r != "killed" && r != "failed-to-start" && r != "binary-changed" {
			t.Errorf("trace %s ended %q", path, r)
		}
	}
	// A new start on the restored path runs.
	s := startNative(t, e, id, 60, "events", "native")
	killAndWait(t, e, p, s.FilePath)

	// Stop fails the test when SIGTERM does not end the endpoint.
	if code := e.Stop(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
