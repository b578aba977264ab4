package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stageFile returns the bytes of dir's staging file.
func stageFile(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stageName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stageRecords writes a staging file of the given records (stream offset
// and bytes each) to dir and returns its bytes.
func stageRecords(t testing.TB, dir string, recs ...stageRec) []byte {
	t.Helper()
	st, err := createStage(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	for _, r := range recs {
		if err := st.write(r.off, []byte(r.data)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, stageName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type stageRec struct {
	off  int64
	data string
}

func TestStage(t *testing.T) {
	dir := t.TempDir()
	// Three Writes: "line one\n" and "line two\n" left uncut, then a
	// Write of which bytes 18..29 went into a chunk with the two lines
	// and "partial" stayed.
	stageRecords(t, dir, stageRec{0, "line one\n"}, stageRec{9, "line two\n"}, stageRec{30, "partial"})
	tests := []struct {
		committed int64
		want      string
		wantErr   bool
	}{
		{0, "", true}, // bytes 18..30 are in no record: the spool lost chunks
		{9, "", true},
		{18, "", true},
		{29, "", true},
		{30, "partial", false},
		{33, "tial", false},
		{37, "", false},
		{38, "", false}, // the spool holds more: the last Write cut all its bytes
		{1 << 40, "", false},
		{-1, "", true},
	}
	for _, tt := range tests {
		got, err := readStaged(dir, tt.committed)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("readStaged(%d) = %q, %v; want %q, error %v", tt.committed, got, err, tt.want, tt.wantErr)
		}
	}

	// Contiguous records read across their boundaries.
	dir2 := t.TempDir()
	stageRecords(t, dir2, stageRec{100, "line one\n"}, stageRec{109, "line two\n"}, stageRec{118, "partial"})
	for committed, want := range map[int64]string{100: "line one\nline two\npartial", 104: " one\nline two\npartial", 109: "line two\npartial", 125: ""} {
		if got, err := readStaged(dir2, committed); err != nil || string(got) != want {
			t.Errorf("readStaged(%d) = %q, %v; want %q", committed, got, err, want)
		}
	}
	if _, err := readStaged(dir2, 99); err == nil {
		t.Error("readStaged before the first record: no error")
	}

	// Compaction keeps only what is not in a chunk, at its stream offset.
	st, err := createStage(dir, 0, []byte("ab"))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", int(stageCompactAt))
	if err := st.write(2, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if !st.due() {
		t.Fatal("a file over the threshold is not due for compaction")
	}
	committed := int64(2 + len(big) - 3)
	st2, err := st.compact(committed, []byte("xxx"))
	if err != nil {
		t.Fatal(err)
	}
	if st2 == st || st2.due() {
		t.Fatal("a file over the threshold was not compacted")
	}
	if err := st2.write(committed+3, []byte("more")); err != nil {
		t.Fatal(err)
	}
	if got, err := readStaged(dir, committed); err != nil || string(got) != "xxxmore" {
		t.Errorf("after compaction readStaged = %q, %v", got, err)
	}
	if got := len(stageFile(t, dir)); got != stageHeader+2*stageRecHeader+7 {
		t.Errorf("compacted file is %d bytes", got)
	}
	if _, err := os.Stat(filepath.Join(dir, stageName+".tmp")); err == nil {
		t.Error("the temporary file was left")
	}

	if err := st2.remove(); err != nil {
		t.Fatal(err)
	}
	if got, err := readStaged(dir, 0); got != nil || err != nil {
		t.Errorf("after remove readStaged = %q, %v", got, err)
	}
	for _, bad := range []string{"garbage", "", "LESTAGE", "LESTAGE3xxxxxxxx", "LESTAGE1short"} {
		os.WriteFile(filepath.Join(dir, stageName), []byte(bad), 0o600)
		if _, err := readStaged(dir, 0); err == nil {
			t.Errorf("a file %q was accepted", bad)
		}
	}
}

// TestStageVersion1: a staging file an endpoint of the previous format
// left is read (magic, stream offset of the first byte, every byte
// written).
func TestStageVersion1(t *testing.T) {
	dir := t.TempDir()
	b := append([]byte(stageMagicV1), 100, 0, 0, 0, 0, 0, 0, 0)
	os.WriteFile(filepath.Join(dir, stageName), append(b, "line one\npartial"...), 0o600)
	tests := []struct {
		committed int64
		want      string
		wantErr   bool
	}{
		{100, "line one\npartial", false},
		{109, "partial", false},
		{116, "", false},
		{99, "", true},
		{117, "", true},
	}
	for _, tt := range tests {
		got, err := readStaged(dir, tt.committed)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("readStaged(%d) = %q, %v; want %q, error %v", tt.committed, got, err, tt.want, tt.wantErr)
		}
	}
	// A Writer takes it over and rewrites it in the current format.
	s := create(t, Options{})
	os.WriteFile(filepath.Join(s.Dir(), stageName), append(b[:8:8], make([]byte, 8)...), 0o600)
	f, _ := os.OpenFile(filepath.Join(s.Dir(), stageName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("old bytes")
	f.Close()
	w := NewWriter(s, 8)
	if err := w.StagingErr(); err != nil || w.Buffered() != 9 {
		t.Fatalf("NewWriter on a version 1 file: %v, %d bytes held", err, w.Buffered())
	}
	if got := stageFile(t, s.Dir()); string(got[:stageHeader]) != stageMagic {
		t.Errorf("the staging file was not rewritten: %q", got)
	}
	w.Close()
	if got := string(spooled(t, s)); got != "old bytes" {
		t.Errorf("spooled %q", got)
	}
}

// TestStageTornLastRecord: a crash in the middle of writing the last
// record (the file ends anywhere in it, or it fails its CRC) loses that
// record only; the records before it are read, and never a wrong byte.
func TestStageTornLastRecord(t *testing.T) {
	const stream = "aaaa\nbbbbcc\ndd"
	dir := t.TempDir()
	file := stageRecords(t, dir, stageRec{0, "aaaa\n"}, stageRec{5, "bbbb"}, stageRec{9, "cc\ndd"})
	last := len(file) - stageRecHeader - len("cc\ndd")
	for _, committed := range []int{0, 2, 5, 9, 11, 14} {
		valid := stream[min(committed, 9):9] // what the first two records hold from committed on
		for cut := last; cut < len(file); cut++ {
			os.WriteFile(filepath.Join(dir, stageName), file[:cut], 0o600)
			if got, err := readStaged(dir, int64(committed)); err != nil || string(got) != valid {
				t.Errorf("committed %d, file cut at %d of %d: %q, %v; want %q", committed, cut, len(file), got, err, valid)
			}
		}
		// A flipped byte anywhere in the last record: it is dropped (a
		// torn write) or reported as damage; a byte never changes.
		for i := last; i < len(file); i++ {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(file)
				bad[i] ^= x
				os.WriteFile(filepath.Join(dir, stageName), bad, 0o600)
				got, err := readStaged(dir, int64(committed))
				if string(got) != valid && !(err == nil && string(got) == stream[committed:]) {
					t.Errorf("committed %d, byte %d ^ %#x: %q (%v), want %q", committed, i, x, got, err, valid)
				}
			}
		}
		os.WriteFile(filepath.Join(dir, stageName), file, 0o600)
		if got, err := readStaged(dir, int64(committed)); err != nil || string(got) != stream[committed:] {
			t.Errorf("committed %d, whole file: %q, %v", committed, got, err)
		}
	}
}

// TestStageDamage: a record that fails its CRC with more records after
// it is damage, not a torn write: an error, with the bytes before it; so
// is a record out of order. A gap (stream bytes from the spool's end on
// that no record holds, before a record that exists) is an error without
// bytes.
func TestStageDamage(t *testing.T) {
	dir := t.TempDir()
	file := stageRecords(t, dir, stageRec{0, "aaaa\n"}, stageRec{5, "bbbb"}, stageRec{9, "cc\ndd"})
	second := stageHeader + stageRecHeader + 5
	tests := []struct {
		name      string
		file      []byte
		committed int64
		want      string
	}{
		{"data of the second record", flip(file, second+stageRecHeader+1), 2, "aa\n"},
		{"crc of the second record", flip(file, second+stageRecCRCOff), 0, "aaaa\n"},
		{"first record", flip(file, stageHeader+stageRecHeader), 0, ""},
		{"length shorter", flip(file, second+stageRecLenOff), 0, "aaaa\n"},
		{"out of order", stageRecords(t, t.TempDir(), stageRec{0, "aaaa\n"}, stageRec{3, "bbbb"}), 0, "aaaa\n"},
		{"gap", stageRecords(t, t.TempDir(), stageRec{0, "aaaa\n"}, stageRec{7, "bbbb"}), 0, ""},
		{"gap after the spool's end", stageRecords(t, t.TempDir(), stageRec{10, "bbbb"}), 8, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, stageName), tt.file, 0o600)
			got, err := readStaged(dir, tt.committed)
			if err == nil || string(got) != tt.want {
				t.Errorf("readStaged(%d) = %q, %v; want %q and an error", tt.committed, got, err, tt.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x04
	return b
}
