package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpCommandIsCommandHelp(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"receive"}, {"token"}, {"templates"}, {"traces"}, {"traces", "watch"}, {"templates", "add"}} {
		var o1, e1, o2, e2 bytes.Buffer
		c1 := run(context.Background(), append([]string{"help"}, cmd...), &o1, &e1)
		c2 := run(context.Background(), append(append([]string{}, cmd...), "--help"), &o2, &e2)
		if c1 != 0 || c2 != 0 || o1.String()+e1.String() != o2.String()+e2.String() || !strings.Contains(o1.String()+e1.String(), "Usage: lambda-endpoint "+strings.Join(cmd, " ")) {
			t.Errorf("help %s (exit %d):\n%s%s\n%s --help (exit %d):\n%s%s", cmd, c1, o1.String(), e1.String(), cmd, c2, o2.String(), e2.String())
		}
	}
}

func TestUnknownEnvWarned(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "lambda.toml")
	os.WriteFile(cfg, []byte("[lambda]\nendpoint-uuid = \"4633d686-f75d-4d1f-8415-02ce37d9e5f8\"\nsecret = \"abc123456\"\nplatform-url = \"http://127.0.0.1:8080\"\n"), 0o600)
	t.Setenv("LAMBDA_SUBMIT_CHUNK_SISE", "100")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"token", "--config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut.String())
	}
	if want := "LAMBDA_SUBMIT_CHUNK_SISE is not a lambda-endpoint variable: ignored (did you mean LAMBDA_SUBMIT_CHUNK_SIZE?)"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", errOut.String(), want)
	}
}
