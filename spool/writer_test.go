package spool

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// spooled returns the concatenated chunks of s.
func spooled(t *testing.T, s *Spool) []byte {
	t.Helper()
	var all []byte
	for no := int64(0); no < s.Next(); no++ {
		b, err := s.Read(no)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestWriter: chunks are cut at newlines within the chunk size, a Flush
// cuts short ones, and a Writer that is abandoned mid-stream (its goroutine
// panicked) loses nothing: the next Writer takes its staged bytes over.
func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		abandon int // abandon the writer after this many writes (0: never)
		want    []string
	}{
		{"lines", []string{"aa\nbb\n", "cc\n"}, 0, []string{"aa\nbb\n", "cc\n"}},
		{"long line cut at size", []string{"0123456789abc"}, 0, []string{"01234567", "89abc"}},
		{"takeover", []string{"aa\nb", "b\ncc"}, 1, []string{"aa\nbb\n", "cc"}},
		{"takeover of nothing", []string{"aaaaaaa\n", "b\n"}, 1, []string{"aaaaaaa\n", "b\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := create(t, Options{})
			w := NewWriter(s, 8)
			if err := w.StagingErr(); err != nil {
				t.Fatal(err)
			}
			for i, p := range tt.writes {
				if i > 0 && i == tt.abandon {
					w.Abandon()
					w = NewWriter(s, 8)
				}
				if _, err := w.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for no := int64(0); no < s.Next(); no++ {
				b, _ := s.Read(no)
				got = append(got, string(b))
			}
			if want := tt.want; fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) || !bytes.Equal(spooled(t, s), []byte(joined(want))) {
				t.Errorf("chunks %q, want %q", got, want)
			}
			if !s.Sealed() {
				t.Error("Close did not seal the spool")
			}
		})
	}
}

func joined(s []string) string {
	var b bytes.Buffer
	for _, x := range s {
		b.WriteString(x)
	}
	return b.String()
}

// TestWriterFull: once the spool refuses a chunk, what the writer held and
// everything written after is counted as dropped.
func TestWriterFull(t *testing.T) {
	s := create(t, Options{MaxBytes: 16})
	w := NewWriter(s, 8)
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = w.Write([]byte("1234567\n"))
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Write on a full spool = %v, want ErrFull", err)
	}
	if _, err := w.Write([]byte("more\n")); !errors.Is(err, ErrFull) {
		t.Fatalf("Write after a failure = %v", err)
	}
	if got := s.Bytes() + w.Dropped(); got != 8*int64(3)+5 {
		t.Errorf("spooled %d + dropped %d, want every byte written", s.Bytes(), w.Dropped())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverStaged: bytes a crashed writer staged become the spool's last
// chunks.
func TestRecoverStaged(t *testing.T) {
	s := create(t, Options{})
	w := NewWriter(s, 8)
	w.Write([]byte("aa\nbbbb"))
	w.Abandon()
	n, err := RecoverStaged(s, 8)
	if err != nil || n != 7 || string(spooled(t, s)) != "aa\nbbbb" || !s.Sealed() {
		t.Errorf("RecoverStaged = %d, %v; spool %q sealed %v", n, err, spooled(t, s), s.Sealed())
	}
}

// TestWriterCommitSince: bytes committed as arrived since an earlier time
// date the held bytes' Oldest from then (a flush is due earlier), also
// for what is left after a cut; held bytes keep their first time.
func TestWriterCommitSince(t *testing.T) {
	s := create(t, Options{Sync: SyncNever})
	w := NewWriter(s, 16)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	commit := func(p string, since time.Time) {
		t.Helper()
		copy(w.Space(len(p)), p)
		if err := w.CommitSince(len(p), since); err != nil {
			t.Fatal(err)
		}
	}
	commit("abc", t0)
	if !w.Oldest().Equal(t0) {
		t.Errorf("Oldest() = %v, want %v", w.Oldest(), t0)
	}
	commit("def", t0.Add(time.Second)) // held: keeps the first time
	if !w.Oldest().Equal(t0) {
		t.Errorf("Oldest() after a second commit = %v, want %v", w.Oldest(), t0)
	}
	t1 := t0.Add(2 * time.Second)
	commit("ghijklmnopqr\nstu", t1) // 22 bytes held: a 16-byte chunk is cut
	if s.Next() == 0 || w.Buffered() == 0 || !w.Oldest().Equal(t1) {
		t.Errorf("after a cut: %d chunks, %d bytes held since %v; want a chunk and the rest held since %v",
			s.Next(), w.Buffered(), w.Oldest(), t1)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(spooled(t, s)); got != "abcdefghijklmnopqr\nstu" {
		t.Errorf("spooled %q", got)
	}
}
