package tests

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lambda-endpoint/lambda-endpoint/platform/receiver"
	"github.com/lambda-endpoint/lambda-endpoint/tests/testsupport"
)

// useReceiveBin points this file's tests at another lambda-endpoint binary
// when LAMBDA_TEST_RECEIVE_BIN names one: how they are shown to fail on an
// older build (go build -o /tmp/old-bin ./cmd/lambda-endpoint in a worktree
// of the old commit, then LAMBDA_TEST_RECEIVE_BIN=/tmp/old-bin go test
// -run ReceiveHostile ./tests/). Unset, the harness's build is used.
func useReceiveBin(t *testing.T) {
	t.Helper()
	bin := os.Getenv("LAMBDA_TEST_RECEIVE_BIN")
	if bin == "" {
		return
	}
	saved := endpointBin
	endpointBin = bin
	t.Cleanup(func() { endpointBin = saved })
}

// submit PUTs one /submit body to the receiver with a valid Authorization
// header and returns the status and answer.
func (r *receiverProc) submit(body string) (int, string) {
	r.t.Helper()
	st, b, err := putSubmit(r.Addr, body)
	if err != nil {
		return 0, err.Error()
	}
	return st, b
}

// putSubmit is submit for goroutines: it reports instead of failing a test.
func putSubmit(addr, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/submit", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", authHeader)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// mustSubmit requires the receiver to answer body with 200.
func (r *receiverProc) mustSubmit(body string) {
	r.t.Helper()
	if st, b := r.submit(body); st != http.StatusOK {
		r.t.Fatalf("PUT /submit %s: %d %s", clipBody(body), st, b)
	}
}

func clipBody(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func startMsg(path string) string { return fmt.Sprintf(`{"trace":%q,"status":"start"}`, path) }

func chunkMsg(path string, no int, data string) string {
	return fmt.Sprintf(`{"trace":%q,"no":%d,"field":%q}`, path, no, base64.StdEncoding.EncodeToString([]byte(data)))
}

func finishedMsg(path string, chunks int, data string) string {
	sum := sha256.Sum256([]byte(data))
	return fmt.Sprintf(`{"trace":%q,"stderr":"","code":0,"status":"finished","reason":"completed","chunks":%d,"bytes":%d,"sha256":%q,"lostEvents":0}`,
		path, chunks, len(data), hex.EncodeToString(sum[:]))
}

// traceFDs counts the descriptors process pid has open on the trace files
// in dir (its lock file, held for its whole life, is not one); with name
// set, only those on dir/name.
func traceFDs(t *testing.T, pid int, dir, name string) int {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fds)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		p, err := os.Readlink(filepath.Join(fds, e.Name()))
		switch {
		case err != nil || !strings.HasPrefix(p, dir+"/") || p == filepath.Join(dir, "lock"):
		case name == "" || p == filepath.Join(dir, name):
			n++
		}
	}
	return n
}

// limitNofile sets process pid's RLIMIT_NOFILE, soft and hard (the Go
// runtime raised the soft limit to the hard one at its start), and checks
// the kernel took it.
func limitNofile(t *testing.T, pid int, n uint64) {
	t.Helper()
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}, nil); err != nil {
		t.Fatalf("prlimit --nofile=%d on the receiver (pid %d): %v", n, pid, err)
	}
	var got unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &got); err != nil || got.Cur != n || got.Max != n {
		t.Fatalf("the receiver's RLIMIT_NOFILE is %+v (%v), want %d", got, err, n)
	}
}

// TestReceiveHostileManyUnfinished lowers the real receiver's descriptor
// limit below the number of traces it is sent, starts them all and leaves
// them unfinished (two descriptors each if every trace kept its files
// open), then sends every trace's next chunk (each trace's files closed for
// the others and reopened) and finishes them all: every message must be
// answered 200, the descriptors on trace files stay within
// 2*receiver.DefaultMaxOpenTraces, and each trace ends whole, its bytes
// once.
func TestReceiveHostileManyUnfinished(t *testing.T) {
	useReceiveBin(t)
	cases := []struct {
		name    string
		nofile  uint64
		traces  int
		senders int  // requests in flight at once
		restart bool // kill -9 the receiver once every trace has chunk 0, start it again
	}{
		{"300 traces under nofile 256, one sender", 256, 300, 1, false},
		{"450 traces under nofile 200, 4 senders", 200, 450, 4, false},
		{"300 traces under nofile 256, receiver killed midway", 256, 300, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := startReceiver(t, "", "")
			limitNofile(t, r.cmd.Process.Pid, c.nofile)
			path := func(i int) string { return fmt.Sprintf("/var/lib/lambda/traces/u%d.trace", i) }
			data := func(i, no int) string { return fmt.Sprintf("trace %d chunk %d\n", i, no) }
			// round sends msgs(i) for every trace i, in order per trace,
			// from c.senders goroutines; every answer must be 200.
			round := func(what string, msgs func(i int) []string) {
				t.Helper()
				next := make(chan int)
				errs := make(chan error, c.senders)
				var wg sync.WaitGroup
				for range c.senders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							for _, m := range msgs(i) {
								st, b, err := putSubmit(r.Addr, m)
								if err == nil && st != http.StatusOK {
									err = fmt.Errorf("%d %s", st, b)
								}
								if err != nil {
									errs <- fmt.Errorf("%s: PUT /submit %s: %w", what, clipBody(m), err)
									for range next {
									}
									return
								}
							}
						}
					}()
				}
				for i := range c.traces {
					next <- i
				}
				close(next)
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					t.Fatalf("%v (with %d traces unfinished under RLIMIT_NOFILE %d)", err, c.traces, c.nofile)
				}
				if n, bound := traceFDs(t, r.cmd.Process.Pid, r.Dir, ""), 2*receiver.DefaultMaxOpenTraces; n > bound {
					t.Fatalf("%s: the receiver holds %d descriptors on trace files; bound %d", what, n, bound)
				}
			}
			round("start and chunk 0", func(i int) []string { return []string{startMsg(path(i)), chunkMsg(path(i), 0, data(i, 0))} })
			if c.restart {
				r.kill()
				r = startReceiver(t, r.Addr, r.Dir)
				limitNofile(t, r.cmd.Process.Pid, c.nofile)
			}
			round("chunk 0 again and chunk 1", func(i int) []string {
				return []string{startMsg(path(i)), chunkMsg(path(i), 0, data(i, 0)), chunkMsg(path(i), 1, data(i, 1))}
			})
			round("finished", func(i int) []string { return []string{finishedMsg(path(i), 2, data(i, 0)+data(i, 1))} })
			for i := range c.traces {
				rec := waitReceived(t, r.Dir, path(i), time.Second)
				checkReceived(t, rec, path(i))
				if want := data(i, 0) + data(i, 1); string(rec.Out) != want {
					t.Fatalf("u%d.out holds %q, want %q", i, rec.Out, want)
				}
			}
			if n := traceFDs(t, r.cmd.Process.Pid, r.Dir, ""); n != 0 {
				t.Errorf("the receiver still holds %d descriptors on trace files with every trace finished", n)
			}
		})
	}
}

// TestReceiveHostileSymlink plants a symbolic link where a trace's file
// goes, pointing out of the receiver's directory (at a file, or at a path
// where none is yet): the receiver refuses the message (500, and its log
// says it met a symbolic link), acknowledges nothing after it, and neither
// writes, truncates nor creates the file outside; the link stays as it was.
func TestReceiveHostileSymlink(t *testing.T) {
	useReceiveBin(t)
	const trace = "/var/lib/lambda/traces/s1.trace"
	const precious = "precious: not the receiver's\n"
	cases := []struct {
		name     string
		link     string // the trace file replaced by a link
		dangling bool   // the link names a path outside where nothing is
		when     string // "fresh": before start; "down": while the receiver was killed; "closed": while the receiver had the trace's files closed for others
		send     string
	}{
		{"output file, before start", "s1.out", false, "fresh", startMsg(trace)},
		{"index file, before start", "s1.idx", false, "fresh", startMsg(trace)},
		{"output file, dangling, before start", "s1.out", true, "fresh", startMsg(trace)},
		{"index file, dangling, before start", "s1.idx", true, "fresh", startMsg(trace)},
		{"output file, swapped while the receiver was down", "s1.out", false, "down", chunkMsg(trace, 1, "cd")},
		{"index file, swapped while the receiver was down", "s1.idx", false, "down", chunkMsg(trace, 1, "cd")},
		{"output file, swapped while the trace was closed for others", "s1.out", false, "closed", chunkMsg(trace, 1, "cd")},
		{"index file, swapped while the trace was closed for others", "s1.idx", false, "closed", chunkMsg(trace, 1, "cd")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "received")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Join(t.TempDir(), "outside")
			if !c.dangling {
				if err := os.WriteFile(outside, []byte(precious), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(dir, c.link)
			plant := func() {
				if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, link); err != nil {
					t.Fatal(err)
				}
			}
			if c.when == "fresh" {
				plant()
			}
			r := startReceiver(t, "", dir)
			switch c.when {
			case "down":
				r.mustSubmit(startMsg(trace))
				r.mustSubmit(chunkMsg(trace, 0, "ab"))
				r.kill()
				plant()
				r = startReceiver(t, r.Addr, dir)
			case "closed":
				r.mustSubmit(startMsg(trace))
				r.mustSubmit(chunkMsg(trace, 0, "ab"))
				for i := range receiver.DefaultMaxOpenTraces + 1 {
					r.mustSubmit(startMsg(fmt.Sprintf("/var/lib/lambda/traces/other%d.trace", i)))
				}
				if n := traceFDs(t, r.cmd.Process.Pid, dir, c.link); n != 0 {
					t.Fatalf("the receiver still holds %s open after %d other traces started: it keeps every trace's files open", c.link, receiver.DefaultMaxOpenTraces+1)
				}
				plant()
			}
			if st, b := r.submit(c.send); st != http.StatusInternalServerError {
				t.Errorf("PUT /submit %s with %s a link out of the directory: %d %s; want 500", c.send, c.link, st, b)
			}
			if st, b := r.submit(chunkMsg(trace, 2, "ef")); st == http.StatusOK {
				t.Errorf("a later chunk was acknowledged: %d %s", st, b)
			}
			b, err := os.ReadFile(outside)
			switch {
			case c.dangling && !errors.Is(err, os.ErrNotExist):
				t.Errorf("the receiver created the file the dangling link names (%q, %v)", b, err)
			case !c.dangling && (err != nil || string(b) != precious):
				t.Errorf("the file outside the directory holds %q (%v), want %q: the receiver wrote through the link", b, err, precious)
			}
			if target, err := os.Readlink(link); err != nil || target != outside {
				t.Errorf("%s is no longer the planted link: %q, %v", c.link, target, err)
			}
			if !strings.Contains(r.log.String(), "symbolic link") {
				t.Errorf("the receiver's log does not say it met a symbolic link:\n%s", tail(r.log.String(), 4000))
			}
		})
	}
}

// goTypeName matches what a Go type or package name in a message looks
// like (*fs.PathError, syscall.Errno, receiver.unsafeError).
var goTypeName = regexp.MustCompile(`\*?\b[a-z][a-z0-9]*\.[A-Za-z]+(Error|Errno)\b|\bsyscall\.|\bos\.|\bunix\.`)

// TestReceiveHostileDir starts the real receiver on a directory another
// user could write to: it must refuse at once (exit 1) with a message
// naming the directory and why, and write nothing there. A private
// directory, or a missing one (created 0700), is accepted.
func TestReceiveHostileDir(t *testing.T) {
	useReceiveBin(t)
	cases := []struct {
		name    string
		mode    os.FileMode // 0: do not create the directory
		foreign bool        // owned by another user: chowned to nobody (not root: / is root's)
		viaLink bool        // --dir is a symbolic link to the directory
		want    string      // in the refusal; "" when accepted
	}{
		{"world-writable", 0o777, false, false, "writable by its group and others (mode 0777)"},
		{"world-writable with sticky bit", 0o777 | os.ModeSticky, false, false, "writable by its group and others (mode 1777)"},
		{"group-writable", 0o770, false, false, "writable by its group (mode 0770)"},
		{"writable by others only", 0o703, false, false, "writable by others (mode 0703)"},
		{"link to a world-writable directory", 0o777, false, true, "writable by its group and others (mode 0777)"},
		{"owned by another user", 0o700, true, false, "belongs to uid "},
		{"private", 0o700, false, false, ""},
		{"private, through a link", 0o700, false, true, ""},
		{"missing", 0, false, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "received")
			want := c.want
			if c.mode != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, c.mode); err != nil {
					t.Fatal(err)
				}
			}
			target := dir
			switch {
			case c.foreign && os.Geteuid() == 0:
				if err := os.Chown(dir, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				want += "65534"
			case c.foreign:
				dir, target, want = "/", "", want+"0"
			}
			if c.viaLink {
				dir = filepath.Join(t.TempDir(), "link")
				if err := os.Symlink(target, dir); err != nil {
					t.Fatal(err)
				}
			}
			if want == "" {
				startReceiver(t, "", dir)
				if st, err := os.Stat(target); err != nil || (c.mode == 0 && st.Mode().Perm() != 0o700) {
					t.Errorf("the receiver's directory: %v, %v; want it created 0700", st, err)
				}
				return
			}
			code, out := runReceiverToExit(t, dir)
			if code != 1 {
				t.Fatalf("the receiver on a %s directory exited %d, want 1:\n%s", c.name, code, out)
			}
			for _, w := range []string{"--dir " + dir, want} {
				if !strings.Contains(out, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, out)
				}
			}
			if m := goTypeName.FindString(out); m != "" {
				t.Errorf("the refusal names a Go type (%q):\n%s", m, out)
			}
			if target != "" {
				if ents, err := os.ReadDir(target); err != nil || len(ents) != 0 {
					t.Errorf("the receiver wrote into the directory it refused: %v, %v", ents, err)
				}
			}
		})
	}
}

// runReceiverToExit starts the real receiver on dir and waits for it to
// exit; one that listens instead fails the test (it accepted dir).
func runReceiverToExit(t *testing.T, dir string) (int, string) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	addr := testsupport.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "receive.toml")
	body := fmt.Sprintf("[lambda]\nendpoint-uuid = %q\nsecret = %q\nplatform-url = \"http://%s\"\n", testUUID, testSecret, addr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &testsupport.SyncBuffer{}
	cmd := exec.Command(endpointBin, "receive", "--config", cfg, "--dir", dir, "--listen", addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	exited := false
	eventually(t, 30*time.Second, "the receiver to exit (or listen)", func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !exited {
		t.Fatalf("the receiver started on %s instead of refusing it:\n%s", dir, log.String())
	}
	return cmd.ProcessState.ExitCode(), log.String()
}
