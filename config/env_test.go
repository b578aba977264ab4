package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		mutate func(*Config) // applied to validConfig to get the expected result
	}{
		{"string listen", map[string]string{"LAMBDA_LISTEN": "0.0.0.0:4000"},
			func(c *Config) { c.Server.Listen = "0.0.0.0:4000" }},
		{"string database url", map[string]string{"LAMBDA_DATABASE_URL": "postgres://u:p@db/lambda"},
			func(c *Config) { c.Database.URL = "postgres://u:p@db/lambda" }},
		{"string log level and format", map[string]string{"LAMBDA_LOG_LEVEL": "debug", "LAMBDA_LOG_FORMAT": "json"},
			func(c *Config) { c.Server.LogLevel = "debug"; c.Server.LogFormat = "json" }},
		{"string secret", map[string]string{"LAMBDA_SECRET": "s3cr3t"},
			func(c *Config) { c.Lambda.Secret = "s3cr3t" }},
		{"string platform url", map[string]string{"LAMBDA_PLATFORM_URL": "https://p.example/x"},
			func(c *Config) { c.Lambda.PlatformURL = "https://p.example/x" }},
		{"string emptied", map[string]string{"LAMBDA_ROOT_PASSWORD": ""},
			func(c *Config) {}},
		{"int", map[string]string{"LAMBDA_SUBMIT_CHUNK_SIZE": "1024"},
			func(c *Config) { c.Lambda.SubmitChunkSize = 1024 }},
		{"int with spaces", map[string]string{"LAMBDA_MAX_TRACES": " 7 "},
			func(c *Config) { c.Lambda.MaxTraces = 7 }},
		{"int64", map[string]string{"LAMBDA_SPOOL_MAX_BYTES": "1048576", "LAMBDA_MAX_BODY_BYTES": "2048"},
			func(c *Config) { c.Lambda.SpoolMaxBytes = 1 << 20; c.Server.MaxBodyBytes = 2048 }},
		{"uint32 and uint8", map[string]string{"LAMBDA_AUTH_MAX_MEMORY_KIB": "8192", "LAMBDA_AUTH_MAX_PARALLELISM": "2"},
			func(c *Config) { c.Auth.MaxMemoryKiB = 8192; c.Auth.MaxParallelism = 2 }},
		{"bool true", map[string]string{"LAMBDA_ALLOW_UNSAFE_OPTIONS": "true"},
			func(c *Config) { c.Lambda.AllowUnsafeOptions = true }},
		{"bool 1", map[string]string{"LAMBDA_ALLOW_UNSAFE_OPTIONS": "1"},
			func(c *Config) { c.Lambda.AllowUnsafeOptions = true }},
		{"duration", map[string]string{"LAMBDA_FLUSH_INTERVAL": "250ms", "LAMBDA_AUTH_CACHE_TTL": "1h", "LAMBDA_REQUEST_TIMEOUT": "2s"},
			func(c *Config) {
				c.Lambda.FlushInterval = Duration{250 * time.Millisecond}
				c.Auth.CacheTTL = Duration{time.Hour}
				c.Server.RequestTimeout = Duration{2 * time.Second}
			}},
		{"list", map[string]string{"LAMBDA_BPF_ENV_ALLOW": "BPFTRACE_STRLEN=int:1..100, BPFTRACE_MAP_KEYS_MAX=deny,,"},
			func(c *Config) {
				c.Lambda.BPFEnvAllow = []string{"BPFTRACE_STRLEN=int:1..100", "BPFTRACE_MAP_KEYS_MAX=deny"}
			}},
		{"list emptied", map[string]string{"LAMBDA_STAP_ENV_ALLOW": ""},
			func(c *Config) { c.Lambda.StapEnvAllow = []string{} }},
		{"auth max concurrent 0 means the default", map[string]string{"LAMBDA_AUTH_MAX_CONCURRENT": "0"},
			func(c *Config) {}},
		{"unrelated variables ignored", map[string]string{"LAMBDA_SECRETT": "x", "LAMBDA_AUTH_SECRET": "y", "SECRET": "z"},
			func(c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(copyConfig(t, "testdata/minimal.toml"), env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := validConfig()
			tt.mutate(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("Load with %v =\n%+v\nwant\n%+v", tt.env, *got, want)
			}
		})
	}
}

func TestEnvOverridesFileValue(t *testing.T) {
	path := writeConfig(t, requiredTOML+"submit-chunk-size = 4096\n", 0o600)
	got, err := Load(path, env(map[string]string{"LAMBDA_SUBMIT_CHUNK_SIZE": "2048"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Lambda.SubmitChunkSize != 2048 {
		t.Fatalf("submit-chunk-size = %d, want the environment's 2048", got.Lambda.SubmitChunkSize)
	}
}

func TestEnvMalformed(t *testing.T) {
	tests := []struct {
		name, variable, value, want string
	}{
		{"int", "LAMBDA_SUBMIT_CHUNK_SIZE", "big", `LAMBDA_SUBMIT_CHUNK_SIZE: invalid integer "big" (not a whole number) (overrides lambda.submit-chunk-size)`},
		{"int empty", "LAMBDA_MAX_TRACES", "", `LAMBDA_MAX_TRACES: invalid integer ""`},
		{"int overflow", "LAMBDA_SUBMIT_CHUNK_SIZE", "99999999999999999999", `LAMBDA_SUBMIT_CHUNK_SIZE: invalid integer "99999999999999999999" (out of range)`},
		{"uint negative", "LAMBDA_AUTH_MAX_MEMORY_KIB", "-1", `LAMBDA_AUTH_MAX_MEMORY_KIB: invalid unsigned integer "-1" (not a whole number) (overrides auth.max-memory-kib)`},
		{"uint8 overflow", "LAMBDA_AUTH_MAX_PARALLELISM", "256", `LAMBDA_AUTH_MAX_PARALLELISM: invalid unsigned integer "256" (out of range)`},
		{"bool", "LAMBDA_ALLOW_UNSAFE_OPTIONS", "yes", `LAMBDA_ALLOW_UNSAFE_OPTIONS: invalid boolean "yes" (want true or false) (overrides lambda.allow-unsafe-options)`},
		{"duration", "LAMBDA_KILL_GRACE", "5", `LAMBDA_KILL_GRACE: invalid duration "5"`},
		{"duration empty", "LAMBDA_AUTH_CACHE_TTL", "", `LAMBDA_AUTH_CACHE_TTL: invalid duration ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := copyConfig(t, "testdata/minimal.toml")
			_, err := Load(path, env(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatal("Load accepted the variable")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tt.variable {
				t.Errorf("KeyError = %+v, want key %s", ke, tt.variable)
			}
			if want := "config " + path + ": " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error = %q\nwant prefix %q", err, want)
			}
		})
	}
}

func TestEnvValueStillValidated(t *testing.T) {
	_, err := Load(copyConfig(t, "testdata/minimal.toml"), env(map[string]string{"LAMBDA_SUBMIT_CHUNK_SIZE": "0"}))
	if err == nil || !strings.Contains(err.Error(), "lambda.submit-chunk-size: must be between 1") {
		t.Fatalf("error = %v", err)
	}
}

func TestEnvVars(t *testing.T) {
	vars := EnvVars()
	byName := map[string]string{}
	for _, v := range vars {
		if prev, dup := byName[v.Name]; dup {
			t.Errorf("%s overrides both %s and %s", v.Name, prev, v.Key)
		}
		byName[v.Name] = v.Key
	}
	if len(vars) != len(knownKeys()) {
		t.Errorf("%d variables for %d keys", len(vars), len(knownKeys()))
	}
	// The names the contract (API.md) and the brief promise.
	for name, key := range map[string]string{
		"LAMBDA_LISTEN":               "server.listen",
		"LAMBDA_LOG_LEVEL":            "server.log-level",
		"LAMBDA_LOG_FORMAT":           "server.log-format",
		"LAMBDA_DATABASE_URL":         "database.url",
		"LAMBDA_ENDPOINT_UUID":        "lambda.endpoint-uuid",
		"LAMBDA_SECRET":               "lambda.secret",
		"LAMBDA_PLATFORM_URL":         "lambda.platform-url",
		"LAMBDA_SUBMIT_CHUNK_SIZE":    "lambda.submit-chunk-size",
		"LAMBDA_BPF_PATH":             "lambda.bpf-path",
		"LAMBDA_STAP_PATH":            "lambda.stap-path",
		"LAMBDA_ROOT_PASSWORD":        "lambda.root-password",
		"LAMBDA_ALLOW_UNSAFE_OPTIONS": "lambda.allow-unsafe-options",
		"LAMBDA_BPF_ENV_ALLOW":        "lambda.bpf-env-allow",
		"LAMBDA_AUTH_MAX_MEMORY_KIB":  "auth.max-memory-kib",
		"LAMBDA_AUTH_CACHE_TTL":       "auth.cache-ttl",
	} {
		if byName[name] != key {
			t.Errorf("%s overrides %q, want %q", name, byName[name], key)
		}
	}
	// Every [lambda] key is LAMBDA_<KEY>.
	for _, v := range vars {
		if rest, ok := strings.CutPrefix(v.Key, "lambda."); ok {
			if want := "LAMBDA_" + strings.ToUpper(strings.ReplaceAll(rest, "-", "_")); v.Name != want {
				t.Errorf("%s is overridden by %s, want %s", v.Key, v.Name, want)
			}
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"typo", []string{"LAMBDA_SUBMIT_CHUNK_SISE=100"},
			[]string{"LAMBDA_SUBMIT_CHUNK_SISE is not a lambda-endpoint variable: ignored (did you mean LAMBDA_SUBMIT_CHUNK_SIZE?)"}},
		{"missing letter", []string{"LAMBDA_SECRT=x"},
			[]string{"LAMBDA_SECRT is not a lambda-endpoint variable: ignored (did you mean LAMBDA_SECRET?)"}},
		{"nothing close", []string{"LAMBDA_COLOUR_SCHEME=dark"},
			[]string{"LAMBDA_COLOUR_SCHEME is not a lambda-endpoint variable: ignored"}},
		{"known and foreign ones", []string{"LAMBDA_SECRET=x", "LAMBDA_LISTEN=:1", "HOME=/root", "LAMBDAX=1", "LAMBDA_TEST_DATABASE_URL=postgres://"}, nil},
		{"no value", []string{"LAMBDA_LISTN"},
			[]string{"LAMBDA_LISTN is not a lambda-endpoint variable: ignored (did you mean LAMBDA_LISTEN?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UnknownEnv(tt.environ)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func FuzzUnknownEnv(f *testing.F) {
	f.Add("LAMBDA_SUBMIT_CHUNK_SISE=1")
	f.Fuzz(func(t *testing.T, kv string) {
		for _, w := range UnknownEnv([]string{kv}) {
			if _, v, ok := strings.Cut(kv, "="); ok && len(v) > 3 && strings.Contains(w, v) && !strings.Contains(strings.SplitN(kv, "=", 2)[0], v) {
				t.Fatalf("warning %q repeats the value", w)
			}
		}
	})
}
