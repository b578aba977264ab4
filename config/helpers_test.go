package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// requiredTOML sets the three keys that have no default.
const requiredTOML = `
[lambda]
endpoint-uuid = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
secret = "abc123456"
platform-url = "http://127.0.0.1:8080"
`

// writeConfig writes content to a fresh file with the given mode and
// returns its path.
func writeConfig(t testing.TB, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lambda.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod explicitly: WriteFile's mode is filtered by the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyConfig copies a checked-in file to a private temporary file, as
// `make run` does, and returns the copy's path.
func copyConfig(t testing.TB, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, string(data), 0o600)
}

// env turns a map into a getenv function.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// validConfig is Default with the required keys set.
func validConfig() Config {
	c := Default()
	c.Lambda.EndpointUUID = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	c.Lambda.Secret = "abc123456"
	c.Lambda.PlatformURL = "http://127.0.0.1:8080"
	return c
}

// problems splits an errors.Join result into its parts.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// keysOf lists the Key of every *KeyError in err.
func keysOf(err error) []string {
	var keys []string
	for _, p := range problems(err) {
		var ke *KeyError
		if errors.As(p, &ke) {
			keys = append(keys, ke.Key)
		}
	}
	return keys
}

// readFile returns a file's content.
func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
