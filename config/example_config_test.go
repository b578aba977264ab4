package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

const exampleFile = "lambda.example.toml"

// TestExampleConfigMatchesDefaults keeps lambda.example.toml from drifting
// from Default: loaded, it must equal Default except for the keys the
// example documents as different.
func TestExampleConfigMatchesDefaults(t *testing.T) {
	got, err := Load(copyConfig(t, exampleFile), nil)
	if err != nil {
		t.Fatalf("loading the example: %v", err)
	}
	want := Default()
	want.Database.URL = "sqlite://var/lambda-endpoint.db"
	want.Lambda.EndpointUUID = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"
	want.Lambda.Secret = "abc123456"
	want.Lambda.PlatformURL = "http://127.0.0.1:8080"
	want.Lambda.DataDir = "var/data"
	want.Lambda.TraceDir = "/tmp"
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("example config =\n%+v\nwant\n%+v", *got, want)
	}
}

// TestExampleConfigListsEveryKey requires every key of Config to be set
// (not just mentioned in a comment) in the example.
func TestExampleConfigListsEveryKey(t *testing.T) {
	var c Config
	md, err := toml.DecodeFile(exampleFile, &c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range knownKeys() {
		if !md.IsDefined(strings.Split(key, ".")...) {
			t.Errorf("%s does not set %s", exampleFile, key)
		}
	}
	if len(knownKeys()) < 30 {
		t.Fatalf("walked only %d keys; the toml tag walk is broken", len(knownKeys()))
	}
}

// TestExampleConfigCommentsEveryKey requires a comment on every line that
// sets a key.
func TestExampleConfigCommentsEveryKey(t *testing.T) {
	for i, line := range strings.Split(readFile(t, exampleFile), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if !strings.Contains(line, " # ") {
			t.Errorf("%s:%d sets a key without a comment: %s", exampleFile, i+1, line)
		}
	}
}

// TestExampleConfigRefusedWhenGroupReadable documents why `make run`
// copies the example to a private file.
func TestExampleConfigRefusedWhenGroupReadable(t *testing.T) {
	path := writeConfig(t, readFile(t, exampleFile), 0o644)
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Load(example at 0644) error = %v, want the chmod 600 refusal", err)
	}
}
