package binary

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/messages"
	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// bash is the C binary the tests read: every host running the endpoint's
// tests has it (the end-to-end tests trace it).
const bash = "/bin/bash"

const goProgram = `package main

import "fmt"

//go:noinline
func work(i int) int { return i*7 + 1 }

func main() {
	s := 0
	for i := 0; i < 10; i++ {
		s += work(i)
	}
	fmt.Println(s)
}
`

var (
	goOnce             sync.Once
	goPlain, goStrip   string
	goBuildErr         error
	goDir, goDirRemove = "", func() {}
)

// goBinaries builds the small Go program twice, with and without symbols,
// once per test binary.
func goBinaries(t *testing.T) (plain, stripped string) {
	t.Helper()
	goOnce.Do(func() {
		dir, err := os.MkdirTemp("", "binary-test-")
		if err != nil {
			goBuildErr = err
			return
		}
		goDir = dir
		goDirRemove = func() { os.RemoveAll(dir) }
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goProgram), 0o600); err != nil {
			goBuildErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gotarget\n\ngo 1.26\n"), 0o600); err != nil {
			goBuildErr = err
			return
		}
		goPlain, goStrip = filepath.Join(dir, "plain"), filepath.Join(dir, "stripped")
		for _, args := range [][]string{{"build", "-o", goPlain, "."}, {"build", "-ldflags=-s -w", "-o", goStrip, "."}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				goBuildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
				return
			}
		}
	})
	if goBuildErr != nil {
		t.Fatal(goBuildErr)
	}
	return goPlain, goStrip
}

func TestMain(m *testing.M) {
	code := m.Run()
	goDirRemove()
	os.Exit(code)
}

func TestInspect(t *testing.T) {
	plain, stripped := goBinaries(t)
	tests := []struct {
		path      string
		wantGo    bool
		mustHave  []string
		mustLack  []string
		wantNoSym bool
	}{
		{bash, false, []string{"xmalloc", "xfree", "readline", "main"}, []string{"__libc_start_main", "malloc"}, false},
		{plain, true, []string{"main.work", "main.main", "runtime.morestack.abi0"}, nil, false},
		{stripped, true, nil, []string{"main.work"}, true},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			s, id, err := Inspect(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if s.Go != tt.wantGo {
				t.Errorf("Go = %v, want %v", s.Go, tt.wantGo)
			}
			if id.Ino == 0 || id.Size == 0 {
				t.Errorf("identity %+v has no inode or size", id)
			}
			if !slices.IsSorted(s.Functions) || len(slices.Compact(slices.Clone(s.Functions))) != len(s.Functions) {
				t.Error("functions are not sorted and unique")
			}
			for _, f := range s.Functions {
				if strings.Contains(f, "@") || f == "" {
					t.Fatalf("function %q keeps a version or is empty", f)
				}
			}
			for _, f := range tt.mustHave {
				if _, ok := slices.BinarySearch(s.Functions, f); !ok {
					t.Errorf("%s is missing", f)
				}
			}
			for _, f := range tt.mustLack { // undefined (imported) symbols are no functions of the file
				if _, ok := slices.BinarySearch(s.Functions, f); ok {
					t.Errorf("%s is listed", f)
				}
			}
			if tt.wantNoSym && len(s.Functions) != 0 {
				t.Errorf("a stripped Go binary lists %d functions", len(s.Functions))
			}
		})
	}
}

// TestSharedLibrary checks that a shared library's exported functions,
// versioned in its .dynsym ("malloc@@GLIBC_2.2.5"), are found by name.
func TestSharedLibrary(t *testing.T) {
	libs, _ := filepath.Glob("/lib/*-linux-gnu/libc.so.6")
	more, _ := filepath.Glob("/usr/lib/*-linux-gnu/libc.so.6")
	libs = append(libs, more...)
	if len(libs) == 0 {
		t.Fatal("no libc.so.6 under /lib or /usr/lib: this host has no glibc?")
	}
	res, err := NewChecker(0, nil).Check(tmpl(messages.BPF, libs[0], "malloc", "free", "pthread_create"))
	if err != nil || res.Probes != 3 || res.Go {
		t.Fatalf("Check(%s) = %+v, %v", libs[0], res, err)
	}
}

// patched returns /bin/bash's first bytes with the 16-bit little-endian
// header field at off set to v.
func patched(t *testing.T, off int, v uint16) []byte {
	t.Helper()
	b, err := os.ReadFile(bash)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[off:], v)
	return b
}

func TestReadRefuses(t *testing.T) {
	bashBytes, err := os.ReadFile(bash)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want error
		say  string
	}{
		{"empty", nil, ErrNotELF, ""},
		{"text", []byte("#!/bin/sh\necho hi\n"), ErrNotELF, ""},
		{"truncated header", bashBytes[:40], ErrNotELF, ""},
		{"truncated sections", bashBytes[:len(bashBytes)/2], ErrNotELF, ""},
		{"relocatable object", patched(t, 16, 1), ErrNotELF, "ET_REL"},
		{"other architecture", patched(t, 18, 183), ErrWrongArch, "EM_AARCH64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Read(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("Read = %v, %v; want %v saying %q", s, err, tt.want, tt.say)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		p, name  string
		question bool
		want     bool
	}{
		{"*", "", false, true},
		{"*", "xmalloc", false, true},
		{"x*", "xmalloc", false, true},
		{"x*", "malloc", false, false},
		{"*alloc", "xmalloc", false, true},
		{"*alloc", "xmallocx", false, false},
		{"x*c", "xmalloc", false, true},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"xmallo?", "xmalloc", true, true},
		{"xmallo?", "xmalloc", false, false},
		{"xmallo?", "xmallo?", false, true},
		{"?", "", true, false},
		{"**", "ab", false, true},
		{"main.work", "main.work", false, true},
		{"main.wor", "main.work", false, false},
	}
	for _, tt := range tests {
		if got := glob(tt.p, tt.name, tt.question); got != tt.want {
			t.Errorf("glob(%q, %q, %v) = %v, want %v", tt.p, tt.name, tt.question, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain, _ := goBinaries(t)
	c := NewChecker(40, nil)
	tests := []struct {
		name       string
		info       messages.TemplateInfo
		wantProbes int
		wantGo     bool
		field, say string // refusal: the field and part of the reason
	}{
		{"one function", tmpl(messages.BPF, bash, "xmalloc"), 1, false, "", ""},
		{"repeated name counts once", tmpl(messages.BPF, bash, "xmalloc", "xmalloc", "xfree"), 2, false, "", ""},
		{"wildcard", tmpl(messages.BPF, bash, "xmall*"), 1, false, "", ""},
		{"stap question mark", tmpl(messages.STAP, bash, "xmallo?"), 1, false, "", ""},
		{"stap file qualifier", tmpl(messages.STAP, bash, "xmalloc@xmalloc.c"), 1, false, "", ""},
		{"go function", tmpl(messages.BPF, plain, "main.work"), 1, true, "", ""},
		{"unknown function", tmpl(messages.BPF, bash, "xmalloc", "no_such_function"), 0, false,
			"functions[1]", `function "no_such_function" matches no function symbol of /bin/bash`},
		{"says inlined", tmpl(messages.BPF, bash, "no_such_function"), 0, false, "functions[0]", "inlined"},
		{"wildcard matching nothing", tmpl(messages.BPF, bash, "zzz*"), 0, false, "functions[0]", `wildcard "zzz*" matches no`},
		{"bpf has no question mark", tmpl(messages.BPF, bash, "xmallo?"), 0, false, "functions[0]", "matches no"},
		{"undefined import", tmpl(messages.BPF, bash, "malloc"), 0, false, "functions[0]", "shared library"},
		{"too many probes", tmpl(messages.BPF, bash, "*"), 0, false, "functions", "more than the limit of 40 (lambda.max-probes)"},
		{"missing binary", tmpl(messages.BPF, filepath.Join(dir, "gone"), "main"), 0, false, "process", "does not exist"},
		{"not ELF", tmpl(messages.BPF, text, "main"), 0, false, "process", "not an ELF executable or shared library"},
		{"directory", tmpl(messages.BPF, dir, "main"), 0, false, "process", "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(tt.info)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Probes != tt.wantProbes || res.Go != tt.wantGo || res.Identity.Ino == 0 {
					t.Errorf("Check = %+v, want %d probes, Go %v", res, tt.wantProbes, tt.wantGo)
				}
				return
			}
			var fe *validate.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, validate.ErrInvalid) {
				t.Fatalf("Check = %v, want a field error", err)
			}
			if fe.Field != tt.field || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("Check = %q (field %s), want field %s saying %q", err, fe.Field, tt.field, tt.say)
			}
		})
	}
}

func TestCheckNamesEveryUnmatched(t *testing.T) {
	_, err := NewChecker(0, nil).Check(tmpl(messages.BPF, bash, "nope1", "xmalloc", "nope2*"))
	if err == nil || !strings.Contains(err.Error(), "functions[0]") || !strings.Contains(err.Error(), "functions[2]") ||
		strings.Contains(err.Error(), "functions[1]") {
		t.Fatalf("Check = %v, want functions[0] and functions[2] named", err)
	}
}

func TestProbeCount(t *testing.T) {
	// The count in the refusal is the whole expansion.
	s, _, err := Inspect(bash)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewChecker(5, nil).Check(tmpl(messages.BPF, bash, "*"))
	if want := "expand to " + strconv.Itoa(len(s.Functions)) + " functions"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check = %v, want %q", err, want)
	}
	if _, err := NewChecker(len(s.Functions), nil).Check(tmpl(messages.BPF, bash, "*")); err != nil {
		t.Fatalf("with the limit at the count: %v", err)
	}
}

func TestCheckBoundsWildcardCost(t *testing.T) {
	// The matcher's worst case: many stars against long names of the
	// starred letter that never match. Refused instead of burning CPU.
	names := make([]string, 20000)
	for i := range names {
		names[i] = strings.Repeat("a", 200) + strconv.Itoa(i)
	}
	slices.Sort(names)
	fs := make([]string, 64)
	for i := range fs {
		fs[i] = strings.Repeat("*a", 100) + "Q" + strconv.Itoa(i)
	}
	start := time.Now()
	_, err := NewChecker(0, nil).check(tmpl(messages.BPF, "/x", fs...), &Symbols{Functions: names}, Identity{})
	if err == nil || !strings.Contains(err.Error(), "too costly") {
		t.Fatalf("check = %v, want the cost refusal", err)
	}
	t.Logf("refused after %s", time.Since(start))
}

func TestMode(t *testing.T) {
	for _, tt := range []struct {
		goBin bool
		mode  messages.Mode
		ok    bool
	}{
		{false, messages.ModeCalls, true},
		{false, messages.ModeSummary, true},
		{true, "", true},
		{true, messages.ModeEvents, true},
		{true, messages.ModeCalls, false},
		{true, messages.ModeSummary, false},
	} {
		err := Mode(Result{Go: tt.goBin}, tt.mode)
		var fe *validate.FieldError
		if tt.ok != (err == nil) || err != nil && (!errors.As(err, &fe) || fe.Field != "mode" || !strings.Contains(err.Error(), "crashes the program")) {
			t.Errorf("Mode(go=%v, %q) = %v", tt.goBin, tt.mode, err)
		}
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bash")
	copyFile(t, bash, p)
	cache := NewCache(0)
	c := NewChecker(0, cache)
	for range 3 {
		if _, err := c.Check(tmpl(messages.BPF, p, "xmalloc")); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses, size := cache.Stats(); hits != 2 || misses != 1 || size == 0 {
		t.Fatalf("after 3 checks: %d hits, %d misses, %d bytes; want 2, 1, >0", hits, misses, size)
	}
	// Rewritten in place (same inode, new mtime): read again.
	touch(t, p, time.Now().Add(time.Hour))
	if _, err := c.Check(tmpl(messages.BPF, p, "xmalloc")); err != nil {
		t.Fatal(err)
	}
	if _, misses, _ := cache.Stats(); misses != 2 {
		t.Errorf("a touched file was not read again: %d misses", misses)
	}
	// Bounded: a cache smaller than one entry keeps nothing.
	small := NewCache(100)
	if _, err := NewChecker(0, small).Check(tmpl(messages.BPF, p, "xmalloc")); err != nil {
		t.Fatal(err)
	}
	if _, _, size := small.Stats(); size != 0 {
		t.Errorf("a 100-byte cache holds %d bytes", size)
	}
}

func TestCacheEvicts(t *testing.T) {
	s := &Symbols{Functions: []string{strings.Repeat("f", 100)}}
	c := NewCache(3 * s.size())
	for i := range 10 {
		c.put(cacheKey{Identity: Identity{Ino: uint64(i)}}, s)
	}
	if _, _, size := c.Stats(); size > 3*s.size() {
		t.Errorf("cache holds %d bytes, more than its %d", size, 3*s.size())
	}
	if _, ok := c.get(cacheKey{Identity: Identity{Ino: 9}}); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.get(cacheKey{Identity: Identity{Ino: 0}}); ok {
		t.Error("the oldest entry was kept")
	}
}

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bin")
	other := filepath.Join(dir, "other")
	tests := []struct {
		name   string
		change func(t *testing.T)
		same   bool
	}{
		{"unchanged", func(*testing.T) {}, true},
		{"replaced by rename", func(t *testing.T) {
			copyFile(t, bash, other)
			if err := os.Rename(other, p); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"modified in place", func(t *testing.T) { touch(t, p, time.Now().Add(time.Hour)) }, false},
		{"removed", func(t *testing.T) { os.Remove(p) }, false},
		{"a directory now", func(t *testing.T) {
			os.Remove(p)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(p)
			copyFile(t, bash, p)
			id, err := Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t)
			err = id.Check(p)
			if tt.same != (err == nil) || err != nil && !errors.Is(err, ErrChanged) {
				t.Errorf("Check = %v, want same=%v", err, tt.same)
			}
		})
	}
}

func tmpl(typ messages.TraceType, process string, functions ...string) messages.TemplateInfo {
	return messages.TemplateInfo{Process: process, Functions: functions, TraceType: typ}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, p string, when time.Time) {
	t.Helper()
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestMatch(t *testing.T) {
	names := []string{"main.deep", "main.main", "main.work", "xfree", "xmalloc", "xrealloc"}
	for _, tt := range []struct {
		t    messages.TraceType
		p    string
		want []string
	}{
		{messages.BPF, "xmalloc", []string{"xmalloc"}},
		{messages.BPF, "malloc", nil},
		{messages.BPF, "x*", []string{"xfree", "xmalloc", "xrealloc"}},
		{messages.BPF, "*alloc", []string{"xmalloc", "xrealloc"}},
		{messages.BPF, "main.?ain", nil}, // "?" is no wildcard for bpftrace
		{messages.STAP, "main.?ain", []string{"main.main"}},
		{messages.STAP, "xfree@x.c", []string{"xfree"}},
	} {
		if got := Match(tt.t, tt.p, names); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s, %q) = %q, want %q", tt.t, tt.p, got, tt.want)
		}
	}
}

// TestCacheSeesRewriteWithMtimeRestored: a binary rewritten in place with
// the same size and its mtime set back (its owner can do both) is read
// again: the cache goes by the change time too, which nobody sets back.
func TestCacheSeesRewriteWithMtimeRestored(t *testing.T) {
	orig, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bash")
	if err := os.WriteFile(p, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(0, nil)
	has := func(name string) bool {
		t.Helper()
		s, _, err := c.Symbols(p)
		if err != nil {
			t.Fatal(err)
		}
		_, found := slices.BinarySearch(s.Functions, name)
		return found
	}
	if !has("xmalloc") {
		t.Fatal("bash has no xmalloc")
	}
	changed := bytes.ReplaceAll(orig, []byte("\x00xmalloc\x00"), []byte("\x00ymalloc\x00"))
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(changed, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if id, _ := Stat(p); id != identityOf(fi) {
		t.Fatalf("the rewrite changed the identity %v -> %v: the test proves nothing", identityOf(fi), id)
	}
	if has("xmalloc") || !has("ymalloc") {
		t.Error("the cache answered for the file as it was before the rewrite")
	}
}
