package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crashPatterns are streams of commits to a Writer with 8-byte chunks; "F"
// is a Flush. They cover the commits whose bytes are all cut, partly cut or
// not cut, several commits before a newline, a long line cut at the chunk
// size, a commit that cuts bytes staged by earlier ones, and (compact: the
// staging file is compacted at 24 bytes) the compaction boundary.
var crashPatterns = []struct {
	name    string
	commits []string
	compact bool
	size    int // the chunk size; 0: 8
}{
	{"all cut", []string{"aaa\nbbb\n", "ccccccc\n", "dd\nee\nf\n"}, false, 0},
	{"partly cut", []string{"aa\nbb\ncc", "c\ndd\nee\nf", "f\n"}, false, 0},
	{"nothing cut", []string{"ab", "cd", "e\n", "fg"}, false, 0},
	{"several commits before a newline", []string{"ab", "cd", "ef", "gh", "ij\nkl", "\n"}, false, 0},
	{"long line", []string{"0123456789abcdefghijk", "lmn", "opqrstuvwxyz\n"}, false, 0},
	{"old and new bytes in one chunk", []string{"abc", "de\nfghijklmnop\nq", "rs"}, false, 0},
	{"flushes", []string{"ab\ncd", "F", "ef", "F", "F", "gh\nijk\nl", "F"}, false, 0},
	{"one byte at a time", strings.Split("ab\ncdefghijk\nlm\n", ""), false, 0},
	{"compaction", []string{"abc", "def", "ghi", "jk\nlmnopq", "rstu", "vwxy\nz", "0123456789", "abcdefgh\n", "ij"}, true, 0},
	{"compaction after full cuts", []string{"aaaaaaa\n", "bbbbbbb\nc", "ccccccc\n", "ddddd", "ddd\n", "eee", "eeeee\nff", "f"}, true, 0},
	// Records longer than stageCopyMax (written with writev on Linux).
	{"long tails", []string{lines(3000, 'a'), lines(stageCopyMax+1, 'b'), lines(20000, 'c'), lines(9000, 'd'), "x", lines(50000, 'e')}, false, 16 << 10},
}

// lines returns n bytes of 100-byte lines of c.
func lines(n int, c byte) string {
	l := strings.Repeat(string(c), 99) + "\n"
	return strings.Repeat(l, n/100+1)[:n]
}

// crashRun commits the first k operations of commits to a fresh spool's
// Writer and returns the spool and the stream written; the Writer is left
// as a crashed process leaves it (not closed). size is the staging file's
// size before and after operation k.
func crashRun(t *testing.T, commits []string, k, chunk int) (s *Spool, w *Writer, stream string, before, after int64) {
	t.Helper()
	s, err := Create(filepath.Join(t.TempDir(), "sp"), nil, Options{Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	w = NewWriter(s, chunk)
	if err := w.StagingErr(); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(s.Dir(), stageName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i, c := range commits[:k] {
		before = size()
		if c == "F" {
			err = w.Flush()
		} else {
			copy(w.Space(len(c)), c)
			err = w.Commit(len(c))
			stream += c
		}
		if err != nil {
			t.Fatalf("operation %d: %v", i, err)
		}
		if err := w.StagingErr(); err != nil {
			t.Fatalf("operation %d: %v", i, err)
		}
	}
	return s, w, stream, before, size()
}

// TestWriterCrash kills a Writer (as a killed process leaves it, and as a
// panicking pump abandons it) after every commit of every pattern, and
// checks that the bytes recovered (by RecoverStaged after a restart, or by
// the next Writer) make exactly the stream written: none lost, none twice.
// A crash in the middle of the last commit's staging write (the file cut
// anywhere in the record it appended) loses at most that commit's bytes,
// and the bytes recovered are still the stream's.
func TestWriterCrash(t *testing.T) {
	defer func(n int64) { stageCompactAt = n }(stageCompactAt)
	for _, p := range crashPatterns {
		t.Run(p.name, func(t *testing.T) {
			stageCompactAt = 8 << 20
			if p.compact {
				stageCompactAt = 24
			}
			chunk := p.size
			if chunk == 0 {
				chunk = 8
			}
			compacted := false
			for k := 1; k <= len(p.commits); k++ {
				// A restart: the spool opened again, RecoverStaged.
				s, _, stream, before, after := crashRun(t, p.commits, k, chunk)
				dir := s.Dir()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				file := stageFile(t, dir)
				s2, _ := reopen(t, dir, Options{Sync: SyncNever})
				held := s2.Bytes()
				n, err := RecoverStaged(s2, chunk)
				if got := string(spooled(t, s2)); err != nil || got != stream || n != int64(len(stream))-held {
					t.Errorf("crash after %d: RecoverStaged = %d, %v; spool %q, want %q", k, n, err, got, stream)
				}
				s2.Close()
				if _, err := os.Stat(filepath.Join(dir, stageName)); err == nil {
					t.Errorf("crash after %d: the staging file is left after RecoverStaged", k)
				}

				// The last commit's record torn: the spool as it was,
				// the staging file cut short anywhere in that record.
				if after > before && bytes.Equal(file[:before], stageFile0(t, p.commits, k-1, chunk)) {
					prev := strings.ReplaceAll(strings.Join(p.commits[:k-1], ""), "F", "")
					step := max((after-before)/50, 1) // every byte of a short record, 50 cuts of a long one
					for cut := before; cut < after; cut = min(cut+step, max(after-1, cut+1)) {
						s3, _, _, _, _ := crashRun(t, p.commits, k, chunk)
						dir := s3.Dir()
						s3.Close()
						if err := os.Truncate(filepath.Join(dir, stageName), cut); err != nil {
							t.Fatal(err)
						}
						s3, _ = reopen(t, dir, Options{Sync: SyncNever})
						_, err := RecoverStaged(s3, chunk)
						got := string(spooled(t, s3))
						if err != nil || !strings.HasPrefix(stream, got) || len(got) < len(prev) {
							t.Errorf("crash in commit %d, staging file cut at %d of %d..%d: %q, %v; want a prefix of %q from %q on",
								k, cut, before, after, got, err, stream, prev)
						}
						s3.Close()
					}
				} else if after < before {
					compacted = true
				}

				// A pump restart: the next Writer on the same spool
				// takes over, then the rest is written.
				s4, w, _, _, _ := crashRun(t, p.commits, k, chunk)
				w.Abandon()
				w = NewWriter(s4, chunk)
				if err := w.StagingErr(); err != nil {
					t.Fatal(err)
				}
				for _, c := range p.commits[k:] {
					if c == "F" {
						err = w.Flush()
					} else {
						_, err = w.Write([]byte(c))
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got, want := string(spooled(t, s4)), strings.ReplaceAll(strings.Join(p.commits, ""), "F", ""); got != want {
					t.Errorf("abandoned after %d: spool %q, want %q", k, got, want)
				}
				s4.Close()
			}
			if p.compact && !compacted {
				t.Error("the staging file was never compacted")
			}
		})
	}
}

// stageFile0 is the staging file after the first k operations of
// commits.
func stageFile0(t *testing.T, commits []string, k, chunk int) []byte {
	s, _, _, _, _ := crashRun(t, commits, k, chunk)
	defer s.Close()
	return stageFile(t, s.Dir())
}

// TestWriterStagesTailOnly: a commit stages only its bytes left uncut,
// nothing when all were cut, and bytes held across commits once.
func TestWriterStagesTailOnly(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	w := NewWriter(s, 8)
	data := func() int {
		b := stageFile(t, s.Dir())
		n := 0
		for pos := stageHeader; pos < len(b); {
			l := int(le.Uint32(b[pos+stageRecLenOff:]))
			n += l
			pos += stageRecHeader + l
		}
		return n
	}
	steps := []struct {
		commit string
		staged int // data bytes in the staging file after it
	}{
		{"aaa\nbbb\n", 0},           // one chunk, nothing left
		{"ab", 2},                   // held
		{"cd", 4},                   // held; "ab" not staged again
		{"e\nfghijk", 10},           // "abcde\n" cut, "fghijk" held and new
		{"lmnopqrstuv", 11},         // "fghijklm" and "nopqrstu" cut, "v" held
		{"wxyz\n01234567", 11},      // "vwxyz\n" and "01234567" cut: nothing held
		{"89", 13},                  // held
		{"\nabcdefghijklmnopq", 14}, // "89\n", "abcdefgh", "ijklmnop" cut, "q" held
	}
	for i, st := range steps {
		if _, err := w.Write([]byte(st.commit)); err != nil {
			t.Fatal(err)
		}
		if got := data(); got != st.staged {
			t.Errorf("after commit %d (%q): %d bytes staged, want %d (%d held)", i, st.commit, got, st.staged, w.Buffered())
		}
	}
	w.Close()
}

// TestWriterCompactionFails: when the staging file cannot be replaced, the
// Writer says so and goes on appending records to the old one, which
// still holds every byte not in a chunk.
func TestWriterCompactionFails(t *testing.T) {
	defer func(n int64) { stageCompactAt = n }(stageCompactAt)
	stageCompactAt = 24
	s := create(t, Options{Sync: SyncNever})
	w := NewWriter(s, 8)
	if err := os.Mkdir(filepath.Join(s.Dir(), stageName+".tmp"), 0o700); err != nil {
		t.Fatal(err) // the temporary file cannot be created
	}
	var stream string
	for i, c := range []string{"abc", "def", "ghi", "jk\nlmnopq", "rstu", "vwxy\nz", "0123456789", "ab", "cd"} {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
		stream += c
		got, err := readStaged(s.Dir(), s.Bytes())
		if err != nil || string(got) != stream[s.Bytes():] {
			t.Errorf("after write %d: staged %q, %v; want %q", i, got, err, stream[s.Bytes():])
		}
	}
	if err := w.StagingErr(); err == nil || !strings.Contains(err.Error(), "compacting") {
		t.Errorf("StagingErr() = %v, want the compaction's failure", err)
	}
	w.Close()
	if got := string(spooled(t, s)); got != stream {
		t.Errorf("spooled %q, want %q", got, stream)
	}
}
