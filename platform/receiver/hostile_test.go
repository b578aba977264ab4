package receiver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

func newBoundedReceiver(t *testing.T, dir string, maxOpen int) *Receiver {
	t.Helper()
	r, err := New(Options{Dir: dir, Verifier: auth.NewVerifier("u", "s", auth.Limits{}), MaxOpenTraces: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func startOf(path string) string { return fmt.Sprintf(`{"trace":%q,"status":"start"}`, path) }
func chunkOf(path string, no int, data string) string {
	return fmt.Sprintf(`{"trace":%q,"no":%d,"field":%q}`, path, no, base64.StdEncoding.EncodeToString([]byte(data)))
}
func finishedOf(path string, chunks int, data string) string {
	sum := sha256.Sum256([]byte(data))
	return fmt.Sprintf(`{"trace":%q,"stderr":"","code":0,"status":"finished","chunks":%d,"bytes":%d,"sha256":%q}`,
		path, chunks, len(data), hex.EncodeToString(sum[:]))
}

func mustSubmit(t *testing.T, r *Receiver, body string, want Result) {
	t.Helper()
	if res, err := submitBody(r, body); err != nil || res != want {
		t.Fatalf("%s: %v, %v; want %v", body, res, err, want)
	}
}

// openInDir counts this process's descriptors on files in dir.
func openInDir(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(p, dir+"/") {
			n++
		}
	}
	return n
}

// TestOpenTracesBounded interleaves many unfinished traces through a
// receiver that keeps at most maxOpen of them open: the descriptors on the
// directory's files never exceed 2*maxOpen, and every trace, reopened
// after being closed for others, ends with its bytes exactly once.
func TestOpenTracesBounded(t *testing.T) {
	for _, c := range []struct {
		name            string
		maxOpen, traces int
		restartMidway   bool
	}{
		{"one open", 1, 20, false},
		{"three open", 3, 40, false},
		{"restart midway", 2, 10, true},
		{"default bound", 0, 2*DefaultMaxOpenTraces + 5, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newBoundedReceiver(t, dir, c.maxOpen)
			bound := c.maxOpen
			if bound == 0 {
				bound = DefaultMaxOpenTraces
			}
			path := func(i int) string { return fmt.Sprintf("/tmp/b%d.trace", i) }
			data := func(i, no int) string { return fmt.Sprintf("trace %d chunk %d\n", i, no) }
			check := func(when string) {
				t.Helper()
				if n := openInDir(t, dir); n > 2*bound {
					t.Fatalf("%s: %d descriptors open on the directory's files, bound %d traces", when, n, bound)
				}
			}
			for i := range c.traces {
				mustSubmit(t, r, startOf(path(i)), Accepted)
				mustSubmit(t, r, chunkOf(path(i), 0, data(i, 0)), Accepted)
				check(fmt.Sprintf("after trace %d's chunk 0", i))
			}
			if c.restartMidway {
				r.Close()
				r = newBoundedReceiver(t, dir, c.maxOpen)
			}
			for i := range c.traces {
				mustSubmit(t, r, chunkOf(path(i), 0, data(i, 0)), Duplicate)
				mustSubmit(t, r, startOf(path(i)), Duplicate)
				mustSubmit(t, r, chunkOf(path(i), 1, data(i, 1)), Accepted)
				check(fmt.Sprintf("after trace %d's chunk 1", i))
			}
			for i := c.traces - 1; i >= 0; i-- {
				mustSubmit(t, r, finishedOf(path(i), 2, data(i, 0)+data(i, 1)), Accepted)
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("b%d.out", i)))
				if err != nil || string(b) != data(i, 0)+data(i, 1) {
					t.Fatalf("b%d.out holds %q, %v", i, b, err)
				}
			}
			if n := openInDir(t, dir); n != 0 {
				t.Errorf("%d descriptors still open on the directory's files with every trace finished", n)
			}
		})
	}
}

// TestReplacedWhileClosed: a trace's .out replaced while the receiver had
// it closed for other traces is refused, and the new file left alone.
func TestReplacedWhileClosed(t *testing.T) {
	dir := t.TempDir()
	r := newBoundedReceiver(t, dir, 1)
	mustSubmit(t, r, startOf("/x/a.trace"), Accepted)
	mustSubmit(t, r, chunkOf("/x/a.trace", 0, "a0"), Accepted)
	mustSubmit(t, r, startOf("/x/b.trace"), Accepted) // closes a's files
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, filepath.Join(dir, "a.out")); err != nil {
		t.Fatal(err)
	}
	if res, err := submitBody(r, chunkOf("/x/a.trace", 1, "a1")); !errors.Is(err, ErrUnsafeFile) {
		t.Fatalf("chunk 1 after a.out was replaced: %v, %v; want an error wrapping ErrUnsafeFile", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.out")); string(b) != "other\n" {
		t.Errorf("the replacing file now holds %q", b)
	}
}

// TestHostileFiles plants things where a trace's files go: the receiver
// refuses them (ErrUnsafeFile), never writes or truncates a file outside
// its directory, and leaves what was planted as it was. Only an empty file
// of its own in place of .out (a start cut short) is taken over.
func TestHostileFiles(t *testing.T) {
	const precious = "precious bytes\n"
	const p = "/x/h.trace"
	symlink := func(name string) func(t *testing.T, dir, outside string) {
		return func(t *testing.T, dir, outside string) {
			if err := os.Symlink(outside, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		before []string // messages accepted before the plant
		plant  func(t *testing.T, dir, outside string)
		closeR bool   // restart the receiver after planting
		send   string // the message that meets the planted thing
		ok     bool   // send is accepted (else refused, ErrUnsafeFile)
		kept   string // planted name that must still be what was planted
	}{
		{name: ".out symlink at start", plant: symlink("h.out"), send: startOf(p), kept: "h.out"},
		{name: ".idx symlink at start", plant: symlink("h.idx"), send: startOf(p), kept: "h.idx"},
		{name: ".json symlink before start", plant: symlink("h.json"), send: startOf(p), kept: "h.json"},
		{name: ".out hard link at start", plant: func(t *testing.T, dir, outside string) {
			if err := os.Truncate(outside, 0); err != nil { // empty, so only the link count tells
				t.Fatal(err)
			}
			if err := os.Link(outside, filepath.Join(dir, "h.out")); err != nil {
				t.Fatal(err)
			}
		}, send: startOf(p), kept: "h.out"},
		{name: ".out FIFO at start", plant: func(t *testing.T, dir, _ string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "h.out"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, send: startOf(p), kept: "h.out"},
		{name: ".out with foreign bytes at start", plant: func(t *testing.T, dir, _ string) {
			if err := os.WriteFile(filepath.Join(dir, "h.out"), []byte("not ours\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, send: startOf(p), kept: "h.out"},
		{name: "empty .out of a start cut short", plant: func(t *testing.T, dir, _ string) {
			if err := os.WriteFile(filepath.Join(dir, "h.out"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, send: startOf(p), ok: true},
		{name: ".out replaced by a symlink, then restart", before: []string{startOf(p), chunkOf(p, 0, "ab")}, plant: func(t *testing.T, dir, outside string) {
			os.Remove(filepath.Join(dir, "h.out"))
			symlink("h.out")(t, dir, outside)
		}, closeR: true, send: chunkOf(p, 1, "cd"), kept: "h.out"},
		{name: ".idx replaced by a symlink, then restart", before: []string{startOf(p), chunkOf(p, 0, "ab")}, plant: func(t *testing.T, dir, outside string) {
			os.Remove(filepath.Join(dir, "h.idx"))
			symlink("h.idx")(t, dir, outside)
		}, closeR: true, send: chunkOf(p, 1, "cd"), kept: "h.idx"},
		{name: ".json symlink at finish", before: []string{startOf(p), chunkOf(p, 0, "ab")}, plant: symlink("h.json"), send: finishedOf(p, 1, "ab"), ok: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := filepath.Join(t.TempDir(), "outside")
			if err := os.WriteFile(outside, []byte(precious), 0o600); err != nil {
				t.Fatal(err)
			}
			r := newBoundedReceiver(t, dir, 0)
			for _, b := range c.before {
				if _, err := submitBody(r, b); err != nil {
					t.Fatal(err)
				}
			}
			c.plant(t, dir, outside)
			want, _ := os.ReadFile(outside)
			var planted os.FileInfo
			if c.kept != "" {
				var err error
				if planted, err = os.Lstat(filepath.Join(dir, c.kept)); err != nil {
					t.Fatal(err)
				}
			}
			if c.closeR {
				r.Close()
				r = newBoundedReceiver(t, dir, 0)
			}
			res, err := submitBody(r, c.send)
			switch {
			case c.ok && err != nil:
				t.Errorf("%s: %v, %v; want it accepted", c.send, res, err)
			case !c.ok && !errors.Is(err, ErrUnsafeFile):
				t.Errorf("%s: %v, %v; want an error wrapping ErrUnsafeFile", c.send, res, err)
			}
			if err != nil && strings.Contains(err.Error(), "*") {
				t.Errorf("error %q names a Go type", err)
			}
			if b, _ := os.ReadFile(outside); string(b) != string(want) {
				t.Errorf("the file outside the directory now holds %q, want %q", b, want)
			}
			if c.kept != "" {
				st, err := os.Lstat(filepath.Join(dir, c.kept))
				if err != nil || !os.SameFile(st, planted) || st.Mode() != planted.Mode() || st.Size() != planted.Size() {
					t.Errorf("%s was changed: %v, %v; planted %v", c.kept, st, err, planted)
				}
			}
			if c.ok && strings.HasPrefix(c.send, `{"trace":"/x/h.trace","status":"finished"`) {
				st, err := os.Lstat(filepath.Join(dir, "h.json"))
				if err != nil || !st.Mode().IsRegular() {
					t.Errorf("h.json is %v, %v; want the finished message in a regular file", st, err)
				}
			}
		})
	}
}

// TestUnsafeDir: New refuses a directory another user can write, with an
// error wrapping ErrUnsafeDir that says why, and creates a missing one 0700.
func TestUnsafeDir(t *testing.T) {
	cases := []struct {
		name    string
		mode    os.FileMode
		foreign bool   // owned by another user
		want    string // in the error; "" when accepted
	}{
		{"private", 0o700, false, ""},
		{"group and others may read", 0o755, false, ""},
		{"world-writable", 0o777, false, "writable by its group and others (mode 0777)"},
		{"world-writable sticky", 0o777 | os.ModeSticky, false, "writable by its group and others (mode 1777)"},
		{"group-writable", 0o770, false, "writable by its group (mode 0770)"},
		{"others-writable", 0o702, false, "writable by others (mode 0702)"},
		{"another user's", 0o700, true, "belongs to uid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			if c.foreign {
				if os.Geteuid() == 0 {
					if err := os.Chown(dir, 65534, 65534); err != nil {
						t.Fatal(err)
					}
				} else {
					dir = "/" // root's, and this test is not root
				}
			}
			r, err := New(Options{Dir: dir, Verifier: auth.NewVerifier("u", "s", auth.Limits{})})
			if c.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				r.Close()
				return
			}
			if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v; want an error wrapping ErrUnsafeDir saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "*") || strings.Contains(err.Error(), "receiver.") {
				t.Errorf("error %q names a Go type", err)
			}
			if ents, _ := os.ReadDir(dir); dir != "/" && len(ents) != 0 {
				t.Errorf("New wrote into a refused directory: %v", ents)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		r, err := New(Options{Dir: dir, Verifier: auth.NewVerifier("u", "s", auth.Limits{})})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("created %v, %v; want mode 0700", st, err)
		}
	})
}

// TestConcurrentEviction runs many traces at once through a receiver that
// keeps two open: traces are closed and reopened under each other's
// requests, and every one ends with its bytes exactly once.
func TestConcurrentEviction(t *testing.T) {
	dir := t.TempDir()
	r := newBoundedReceiver(t, dir, 2)
	const traces, chunks = 16, 30
	errs := make(chan error, traces)
	for i := range traces {
		go func() {
			path := fmt.Sprintf("/tmp/c%d.trace", i)
			var all strings.Builder
			send := func(body string) error {
				_, err := submitBody(r, body)
				return err
			}
			err := send(startOf(path))
			for no := 0; err == nil && no < chunks; no++ {
				data := fmt.Sprintf("%d-%d\n", i, no)
				all.WriteString(data)
				if err = send(chunkOf(path, no, data)); err == nil && no%3 == 0 {
					err = send(chunkOf(path, no, data)) // a resend, checked against the index
				}
			}
			if err == nil {
				err = send(finishedOf(path, chunks, all.String()))
			}
			errs <- err
		}()
	}
	for range traces {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for i := range traces {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d.out", i)))
		if err != nil || strings.Count(string(b), "\n") != chunks {
			t.Errorf("c%d.out: %d lines, %v", i, strings.Count(string(b), "\n"), err)
		}
	}
	if n := openInDir(t, dir); n != 0 {
		t.Errorf("%d descriptors still open on the directory's files with every trace finished", n)
	}
}

// TestLock: one receiver per directory. DIR/lock is opened like every
// other file: a link there (dangling or not), a hard link or a file with
// other bytes than a PID is refused (ErrUnsafeFile) and left as it is; a
// second Lock while the first is held gives ErrDirBusy naming this PID; a
// PID left by an earlier receiver is replaced.
func TestLock(t *testing.T) {
	const precious = "precious bytes\n"
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		name   string
		plant  func(t *testing.T, lock, outside string)
		unsafe bool // Lock refuses with ErrUnsafeFile; else it is taken
	}{
		{"none", func(*testing.T, string, string) {}, false},
		{"an earlier receiver's", func(t *testing.T, lock, _ string) {
			if err := os.WriteFile(lock, []byte("4194304\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"empty", func(t *testing.T, lock, _ string) {
			if err := os.WriteFile(lock, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"symbolic link", func(t *testing.T, lock, outside string) {
			if err := os.Symlink(outside, lock); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"dangling symbolic link", func(t *testing.T, lock, outside string) {
			if err := os.Symlink(outside+".missing", lock); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"hard link", func(t *testing.T, lock, outside string) {
			if err := os.WriteFile(outside, []byte("12\n"), 0o600); err != nil { // a PID, so only the link count tells
				t.Fatal(err)
			}
			if err := os.Link(outside, lock); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"other bytes", func(t *testing.T, lock, _ string) {
			if err := os.WriteFile(lock, []byte("12\nnot a lock\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := filepath.Join(t.TempDir(), "outside")
			if err := os.WriteFile(outside, []byte(precious), 0o600); err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(dir, "lock")
			c.plant(t, lock, outside)
			wantOutside, _ := os.ReadFile(outside)
			planted, _ := os.Lstat(lock)
			plantedBytes, _ := os.ReadFile(lock)
			r := newBoundedReceiver(t, dir, 0)
			l, err := r.Lock()
			if b, _ := os.ReadFile(outside); string(b) != string(wantOutside) {
				t.Errorf("the file outside the directory now holds %q, want %q", b, wantOutside)
			}
			if c.unsafe {
				if !errors.Is(err, ErrUnsafeFile) {
					t.Fatalf("Lock: %v, %v; want an error wrapping ErrUnsafeFile", l, err)
				}
				st, err := os.Lstat(lock)
				if b, _ := os.ReadFile(lock); err != nil || !os.SameFile(st, planted) || string(b) != string(plantedBytes) {
					t.Errorf("the planted lock was changed: %v, %v, %q", st, err, b)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lock: %v", err)
			}
			defer l.Close()
			if b, _ := os.ReadFile(lock); string(b) != pid+"\n" {
				t.Errorf("the lock holds %q, want this PID", b)
			}
			r2 := newBoundedReceiver(t, dir, 0)
			if l2, err := r2.Lock(); !errors.Is(err, ErrDirBusy) || !strings.Contains(err.Error(), "pid "+pid) {
				t.Fatalf("a second Lock: %v, %v; want an error wrapping ErrDirBusy naming pid %s", l2, err, pid)
			}
			l.Close()
			l2, err := r2.Lock()
			if err != nil {
				t.Fatalf("Lock after the first was released: %v", err)
			}
			l2.Close()
		})
	}
}
