package spool

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenChunks are the chunks of the golden spool.
var goldenChunks = []string{"hello\n", "", "{\"probe\":\"xmalloc\",\"pid\":42}\n"}

// TestGoldenFormat pins the on-disk format: a spool written today must be
// byte for byte the golden one, and the golden one must open. A change
// that fails it breaks spools left by an older endpoint.
func TestGoldenFormat(t *testing.T) {
	golden := filepath.Join("testdata", "golden")
	files := []string{metaFile, stateFileName, segmentName(0)}

	s := create(t, Options{Sync: SyncNever})
	for _, c := range goldenChunks {
		if _, err := s.Append([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(0); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(golden, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(s.Dir(), f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(golden, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(s.Dir(), f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(golden, f))
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file:\ngot  %x\nwant %x", f, got, want)
		}
	}

	// Open a copy of the golden spool.
	dir := filepath.Join(t.TempDir(), "golden")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(golden, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g, r := reopen(t, dir, Options{Sync: SyncNever})
	if len(r.Damage) != 0 || r.Chunks != 3 || r.Acked != 1 || !r.Sealed {
		t.Errorf("Recovery of the golden spool = %+v", r)
	}
	var all []byte
	for i, c := range goldenChunks {
		all = append(all, c...)
		if i < 1 {
			continue
		}
		got, err := g.Read(int64(i))
		if err != nil || string(got) != c {
			t.Errorf("Read(%d) = %q, %v; want %q", i, got, err, c)
		}
	}
	if g.SHA256() != sha256.Sum256(all) {
		t.Errorf("SHA256() of the golden spool = %x, want %x", g.SHA256(), sha256.Sum256(all))
	}
}
