package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a private config file. Load
// must not panic, must either return a Config that validates or an error
// that wraps ErrInvalid (the file always exists and is readable, so no I/O
// error is possible).
func FuzzLoad(f *testing.F) {
	for _, name := range []string{exampleFile, "testdata/minimal.toml", "testdata/no-secrets.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		requiredTOML + "submit-chunk-size = 0\n",
		requiredTOML + "secrett = 1\n",
		requiredTOML + "flush-interval = 5\n",
		requiredTOML + "kill-grace = {a = 1}\n",
		requiredTOML + "bpf-env-allow = [[1]]\n",
		requiredTOML + "[auth]\nmax-parallelism = 999\nmax-memory-kib = -4\n",
		"[[lambda]]\nsecret = 1\n",
		"lambda.secret = \"x\"\nserver = []\n",
		"[server.listen]\nx = 1\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Load error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned a config that does not validate: %v", err)
		}
		_ = c.Redacted()
	})
}
