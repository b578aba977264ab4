package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoadMinimalFileGetsDefaults(t *testing.T) {
	got, err := Load(copyConfig(t, "testdata/minimal.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := validConfig(); !reflect.DeepEqual(*got, want) {
		t.Fatalf("Load(minimal) =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestLoadDecodesEveryKind(t *testing.T) {
	path := writeConfig(t, requiredTOML+`
submit-chunk-size = 4096
allow-unsafe-options = true
flush-interval = "250ms"
bpf-env-allow = ["BPFTRACE_MAP_KEYS_MAX=deny", "BPFTRACE_STRLEN=int:1..100"]
stap-env-allow = []
spool-max-bytes = 8192

[server]
listen = "0.0.0.0:3001"
log-format = "json"

[database]
url = "sqlite://:memory:"

[auth]
max-parallelism = 8
max-concurrent = 3
`, 0o600)
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := validConfig()
	want.Lambda.SubmitChunkSize = 4096
	want.Lambda.AllowUnsafeOptions = true
	want.Lambda.FlushInterval = Duration{250 * time.Millisecond}
	want.Lambda.BPFEnvAllow = []string{"BPFTRACE_MAP_KEYS_MAX=deny", "BPFTRACE_STRLEN=int:1..100"}
	want.Lambda.StapEnvAllow = []string{}
	want.Lambda.SpoolMaxBytes = 8192
	want.Server.Listen = "0.0.0.0:3001"
	want.Server.LogFormat = "json"
	want.Database.URL = "sqlite://:memory:"
	want.Auth.MaxParallelism = 8
	want.Auth.MaxConcurrent = 3
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("Load =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestLoadResolvesMaxConcurrentZero(t *testing.T) {
	got, err := Load(writeConfig(t, requiredTOML+"[auth]\nmax-concurrent = 0\n", 0o600), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := min(4, max(1, runtime.NumCPU()/2)); got.Auth.MaxConcurrent != want {
		t.Fatalf("max-concurrent = %d, want half the CPUs, 1 to 4: %d", got.Auth.MaxConcurrent, want)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // substrings of the error, after "config <path>: "
	}{
		{"unknown key", requiredTOML + "secrett = \"x\"\n",
			[]string{`unknown key "lambda.secrett" (did you mean "lambda.secret"?)`}},
		{"unknown keys", requiredTOML + "colour = 1\n[server]\nlisen = \"x\"\nlog_level = \"x\"\nlisten_addr = \"x\"\n",
			[]string{`unknown keys "lambda.colour", "server.lisen" (did you mean "server.listen"?), "server.log_level" (did you mean "server.log-level"?), "server.listen_addr"`}},
		{"unknown section named once", requiredTOML + "[metrics]\nlisten = \":9100\"\nenabled = true\n",
			[]string{`unknown key "metrics"`}},
		{"unknown top-level key", "listen = \"x\"\n" + requiredTOML,
			[]string{`unknown key "listen"`}},
		{"string for int", requiredTOML + "submit-chunk-size = \"big\"\n",
			[]string{`last key "lambda.submit-chunk-size"`, "incompatible types"}},
		{"int for string", requiredTOML + "root-password = 5\n",
			[]string{`last key "lambda.root-password"`, "incompatible types"}},
		{"string for bool", requiredTOML + "allow-unsafe-options = \"yes\"\n",
			[]string{`last key "lambda.allow-unsafe-options"`, "incompatible types"}},
		{"string for list", requiredTOML + "bpf-env-allow = \"BPFTRACE_*=any\"\n",
			[]string{`last key "lambda.bpf-env-allow"`}},
		{"int list", requiredTOML + "bpf-env-allow = [1, 2]\n",
			[]string{`lambda.bpf-env-allow`, "incompatible types"}},
		{"float for int", requiredTOML + "max-traces = 1.5\n",
			[]string{`last key "lambda.max-traces"`}},
		{"section as value", "server = 5\n" + requiredTOML,
			[]string{`last key "server"`, "expected table"}},
		{"negative for unsigned", requiredTOML + "[auth]\nmax-memory-kib = -1\n",
			[]string{`last key "auth.max-memory-kib"`}},
		{"overflow uint8", requiredTOML + "[auth]\nmax-parallelism = 300\n",
			[]string{`last key "auth.max-parallelism"`}},
		{"bad duration", requiredTOML + "flush-interval = \"soon\"\n",
			[]string{`last key "lambda.flush-interval"`, `invalid duration "soon"`}},
		{"duration without unit", requiredTOML + "max-lasting = 3600\n",
			[]string{`last key "lambda.max-lasting"`, `invalid duration "3600"`}},
		{"duration as table", requiredTOML + "kill-grace = {s = 1}\n",
			[]string{`lambda.kill-grace`}},
		{"syntax error", "[lambda\nsecret = 1\n",
			[]string{"toml: line 2", "table name"}},
		{"duplicate key", requiredTOML + "secret = \"again\"\n",
			[]string{`Key 'lambda.secret' has already been defined`}},
		{"missing secret", strings.Replace(requiredTOML, `secret = "abc123456"`, "", 1),
			[]string{"lambda.secret: missing"}},
		{"missing uuid", strings.Replace(requiredTOML, `endpoint-uuid = "4633d686-f75d-4d1f-8415-02ce37d9e5f8"`, "", 1),
			[]string{"lambda.endpoint-uuid: missing"}},
		{"bad uuid", strings.Replace(requiredTOML, "4633d686-", "4633d686", 1),
			[]string{"lambda.endpoint-uuid: must be a UUID"}},
		{"malformed platform url", strings.Replace(requiredTOML, "http://127.0.0.1:8080", "127.0.0.1:8080", 1),
			[]string{"lambda.platform-url: "}},
		{"chunk size 0", requiredTOML + "submit-chunk-size = 0\n",
			[]string{"lambda.submit-chunk-size: must be between 1 and 67108864, got 0"}},
		{"chunk size -1", requiredTOML + "submit-chunk-size = -1\n",
			[]string{"lambda.submit-chunk-size: must be between 1 and 67108864, got -1"}},
		{"bad log level", requiredTOML + "[server]\nlog-level = \"chatty\"\n",
			[]string{`server.log-level: must be one of debug, info, warn, error, got "chatty"`}},
		{"negative limit", requiredTOML + "max-traces = -1\n",
			[]string{"lambda.max-traces: must be at least 1, got -1"}},
		{"negative duration", requiredTOML + "retry-min = \"-1s\"\n",
			[]string{"lambda.retry-min: must be a positive duration, got -1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.toml, 0o600)
			_, err := Load(path, nil)
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			if prefix := "config " + path + ": "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v is not fs.ErrNotExist", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("an I/O error must not wrap ErrInvalid: %v", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestLoadWithoutFile(t *testing.T) {
	got, err := Load("", env(map[string]string{
		"LAMBDA_ENDPOINT_UUID": "4633d686-f75d-4d1f-8415-02ce37d9e5f8",
		"LAMBDA_SECRET":        "abc123456",
		"LAMBDA_PLATFORM_URL":  "http://127.0.0.1:8080",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := validConfig(); !reflect.DeepEqual(*got, want) {
		t.Fatalf("Load(\"\") =\n%+v\nwant\n%+v", *got, want)
	}
	_, err = Load("", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "config: lambda.endpoint-uuid: missing") {
		t.Fatalf("Load(\"\", nil) error = %v", err)
	}
}

func TestLoadPermissions(t *testing.T) {
	noSecrets := requiredTOML[:strings.Index(requiredTOML, "secret")]
	noSecretsEnv := env(map[string]string{"LAMBDA_SECRET": "from-env", "LAMBDA_PLATFORM_URL": "http://127.0.0.1:8080"})
	tests := []struct {
		name    string
		toml    string
		mode    fs.FileMode
		getenv  func(string) (string, bool)
		refused bool
	}{
		{"0644 with secret", requiredTOML, 0o644, nil, true},
		{"0640 with secret", requiredTOML, 0o640, nil, true},
		{"0604 with secret", requiredTOML, 0o604, nil, true},
		{"0601 with secret", requiredTOML, 0o601, nil, true},
		{"0600 with secret", requiredTOML, 0o600, nil, false},
		{"0400 with secret", requiredTOML, 0o400, nil, false},
		{"0644 with root password only", noSecrets + "root-password = \"pw\"\n", 0o644, noSecretsEnv, true},
		{"0644 with empty secrets", noSecrets + "secret = \"\"\nroot-password = \"\"\n", 0o644, noSecretsEnv, false},
		{"0644 without secrets", noSecrets, 0o644, noSecretsEnv, false},
		{"0644 without secrets, secret from env", "", 0o644, env(map[string]string{
			"LAMBDA_ENDPOINT_UUID": "4633d686-f75d-4d1f-8415-02ce37d9e5f8",
			"LAMBDA_SECRET":        "from-env",
			"LAMBDA_ROOT_PASSWORD": "pw",
			"LAMBDA_PLATFORM_URL":  "http://127.0.0.1:8080",
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.toml, tt.mode)
			_, err := Load(path, tt.getenv)
			if !tt.refused {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PermissionError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			want := "config " + path + " holds secrets but is readable by group/others (mode " +
				octal(tt.mode) + "): run chmod 600 " + path
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
		})
	}
}

func octal(m fs.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestLoadSecretPermissionCheckedBeforeUnknownKeys(t *testing.T) {
	path := writeConfig(t, requiredTOML+"secrett = 1\n", 0o644)
	_, err := Load(path, nil)
	var pe *PermissionError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *PermissionError", err)
	}
}
