package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidatesOnceRequiredKeysAreSet(t *testing.T) {
	c := Default()
	err := c.Validate()
	if got, want := keysOf(err), []string{"lambda.endpoint-uuid", "lambda.secret", "lambda.platform-url"}; !slices.Equal(got, want) {
		t.Fatalf("Default().Validate() keys = %v, want %v (err: %v)", got, want, err)
	}
	c = validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with uuid/secret/url: %v", err)
	}
}

func TestValidateAcceptsEdgeValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"sqlite relative", func(c *Config) { c.Database.URL = "sqlite://relative/path.db" }},
		{"sqlite absolute", func(c *Config) { c.Database.URL = "sqlite:///abs/path.db" }},
		{"sqlite memory", func(c *Config) { c.Database.URL = "sqlite://:memory:" }},
		{"postgres", func(c *Config) { c.Database.URL = "postgres://lambda:lambda@127.0.0.1:5432/lambda?sslmode=disable" }},
		{"postgresql", func(c *Config) { c.Database.URL = "postgresql://db/lambda" }},
		{"upper-case uuid", func(c *Config) { c.Lambda.EndpointUUID = "4633D686-F75D-4D1F-8415-02CE37D9E5F8" }},
		{"https with path", func(c *Config) { c.Lambda.PlatformURL = "https://platform.example.com/api/" }},
		{"listen all interfaces", func(c *Config) { c.Server.Listen = ":3000" }},
		{"listen ipv6 port 0", func(c *Config) { c.Server.Listen = "[::1]:0" }},
		{"chunk size 1", func(c *Config) { c.Lambda.SubmitChunkSize = 1; c.Lambda.SpoolMaxBytes = 1 }},
		{"max lasting 1s", func(c *Config) { c.Lambda.MaxLasting = Duration{time.Second} }},
		{"stderr limit 0", func(c *Config) { c.Lambda.StderrLimit = 0 }},
		{"cache off", func(c *Config) { c.Auth.CacheSize = 0 }},
		{"no env allowed", func(c *Config) { c.Lambda.BPFEnvAllow = nil; c.Lambda.StapEnvAllow = []string{} }},
		{"relative data dir", func(c *Config) { c.Lambda.DataDir = "var/data" }},
		{"spool sync always", func(c *Config) { c.Lambda.SpoolSync = SpoolSyncAlways }},
		{"spool sync never", func(c *Config) { c.Lambda.SpoolSync = SpoolSyncNever }},
		{"retry min == max", func(c *Config) { c.Lambda.RetryMin = Duration{time.Second}; c.Lambda.RetryMax = Duration{time.Second} }},
		{"json debug logs", func(c *Config) { c.Server.LogLevel = "debug"; c.Server.LogFormat = "json" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // the single problem's full message
	}{
		{"missing uuid", func(c *Config) { c.Lambda.EndpointUUID = "" }, "lambda.endpoint-uuid: missing"},
		{"bad uuid", func(c *Config) { c.Lambda.EndpointUUID = "not-a-uuid" }, `lambda.endpoint-uuid: must be a UUID like 4633d686-f75d-4d1f-8415-02ce37d9e5f8, got "not-a-uuid"`},
		{"uuid without dashes", func(c *Config) { c.Lambda.EndpointUUID = "4633d686f75d4d1f841502ce37d9e5f8" }, "lambda.endpoint-uuid: must be a UUID"},
		{"uuid non-hex", func(c *Config) { c.Lambda.EndpointUUID = "4633d686-f75d-4d1f-8415-02ce37d9e5fg" }, "lambda.endpoint-uuid: must be a UUID"},
		{"uuid with dollar", func(c *Config) { c.Lambda.EndpointUUID = "4633d686-f75d-4d1f-8415-02ce37d9e5f$" }, "lambda.endpoint-uuid: must be a UUID"},
		{"missing secret", func(c *Config) { c.Lambda.Secret = "" }, "lambda.secret: missing"},
		{"missing platform url", func(c *Config) { c.Lambda.PlatformURL = "" }, "lambda.platform-url: missing"},
		{"platform url relative", func(c *Config) { c.Lambda.PlatformURL = "/submit" }, `lambda.platform-url: "/submit": must be an absolute http:// or https:// URL, e.g. http://127.0.0.1:8080`},
		{"platform url without scheme", func(c *Config) { c.Lambda.PlatformURL = "127.0.0.1:8080" }, `lambda.platform-url: "127.0.0.1:8080": must be an absolute http:// or https:// URL, e.g. http://127.0.0.1:8080`},
		{"platform url host only", func(c *Config) { c.Lambda.PlatformURL = "platform.example:9000" }, `lambda.platform-url: "platform.example:9000": must be an absolute http:// or https:// URL, e.g. http://platform.example:9000`},
		{"platform url ftp", func(c *Config) { c.Lambda.PlatformURL = "ftp://host" }, "lambda.platform-url: \"ftp://host\": must be an absolute http:// or https:// URL, e.g. http://127.0.0.1:8080"},
		{"platform url no host", func(c *Config) { c.Lambda.PlatformURL = "http:///path" }, "lambda.platform-url: must name a host"},
		{"platform url port only", func(c *Config) { c.Lambda.PlatformURL = "http://:8080" }, "lambda.platform-url: must name a host"},
		{"platform url malformed", func(c *Config) { c.Lambda.PlatformURL = "http://[::1" }, "lambda.platform-url: \"http://[::1\": must be an absolute http:// or https:// URL"},
		{"platform url bad port", func(c *Config) { c.Lambda.PlatformURL = "http://host:99999" }, "lambda.platform-url: port must be a number"},
		{"platform url query", func(c *Config) { c.Lambda.PlatformURL = "http://host/?a=b" }, "lambda.platform-url: must not have a query"},
		{"platform url fragment", func(c *Config) { c.Lambda.PlatformURL = "http://host/#x" }, "lambda.platform-url: must not have a fragment"},
		{"platform url user info", func(c *Config) { c.Lambda.PlatformURL = "http://u:pw@host" }, `lambda.platform-url: must not carry user info (the Authorization header authenticates), got "http://u:xxxxx@host"`},
		{"chunk size 0", func(c *Config) { c.Lambda.SubmitChunkSize = 0 }, "lambda.submit-chunk-size: must be between 1 and 67108864, got 0"},
		{"chunk size -1", func(c *Config) { c.Lambda.SubmitChunkSize = -1 }, "lambda.submit-chunk-size: must be between 1 and 67108864, got -1"},
		{"chunk size huge", func(c *Config) { c.Lambda.SubmitChunkSize = 64<<20 + 1 }, "lambda.submit-chunk-size: must be between 1 and 67108864"},
		{"relative bpf path", func(c *Config) { c.Lambda.BPFPath = "bpftrace" }, `lambda.bpf-path: must be an absolute path, got "bpftrace"`},
		{"empty stap path", func(c *Config) { c.Lambda.StapPath = "" }, "lambda.stap-path: missing"},
		{"relative sudo path", func(c *Config) { c.Lambda.SudoPath = "sudo" }, "lambda.sudo-path: must be an absolute path"},
		{"relative trace dir", func(c *Config) { c.Lambda.TraceDir = "tmp" }, "lambda.trace-dir: must be an absolute path"},
		{"relative cgroup parent", func(c *Config) { c.Lambda.CgroupParent = "my/cg" }, "lambda.cgroup-parent: must be an absolute path"},
		{"empty data dir", func(c *Config) { c.Lambda.DataDir = "" }, "lambda.data-dir: missing"},
		{"root password newline", func(c *Config) { c.Lambda.RootPassword = "pw\nrm -rf /" }, "lambda.root-password: must not contain a newline or NUL"},
		{"flush interval 0", func(c *Config) { c.Lambda.FlushInterval = Duration{} }, "lambda.flush-interval: must be a positive duration, got 0s"},
		{"flush interval negative", func(c *Config) { c.Lambda.FlushInterval = Duration{-time.Second} }, "lambda.flush-interval: must be a positive duration, got -1s"},
		{"max lasting under 1s", func(c *Config) { c.Lambda.MaxLasting = Duration{999 * time.Millisecond} }, "lambda.max-lasting: must be at least 1s, got 999ms"},
		{"max traces 0", func(c *Config) { c.Lambda.MaxTraces = 0 }, "lambda.max-traces: must be at least 1, got 0"},
		{"max traces negative", func(c *Config) { c.Lambda.MaxTraces = -3 }, "lambda.max-traces: must be at least 1, got -3"},
		{"max probes 0", func(c *Config) { c.Lambda.MaxProbes = 0 }, "lambda.max-probes: must be between 1 and 4096, got 0"},
		{"max probes too many", func(c *Config) { c.Lambda.MaxProbes = 5000 }, "lambda.max-probes: must be between 1 and 4096, got 5000"},
		{"engine unknown", func(c *Config) { c.Lambda.Engine = "dtrace" }, `lambda.engine: must be one of bpftrace, native, got "dtrace"`},
		{"native ring not a power of two", func(c *Config) { c.Lambda.NativeRingBytes = 5000 }, "lambda.native-ring-bytes: must be a power of two from 4096 (4 KiB) to 268435456 (256 MiB), got 5000"},
		{"native ring too small", func(c *Config) { c.Lambda.NativeRingBytes = 2048 }, "lambda.native-ring-bytes: must be a power of two"},
		{"native ring too large", func(c *Config) { c.Lambda.NativeRingBytes = 512 << 20 }, "lambda.native-ring-bytes: must be a power of two"},
		{"kill grace 0", func(c *Config) { c.Lambda.KillGrace = Duration{} }, "lambda.kill-grace: must be a positive duration"},
		{"stderr limit negative", func(c *Config) { c.Lambda.StderrLimit = -1 }, "lambda.stderr-limit: must be between 0 and 16777216, got -1"},
		{"spool max below chunk", func(c *Config) { c.Lambda.SpoolMaxBytes = 100 }, "lambda.spool-max-bytes: must be at least submit-chunk-size (51200), got 100"},
		{"spool max negative", func(c *Config) { c.Lambda.SpoolMaxBytes = -1 }, "lambda.spool-max-bytes: must be at least submit-chunk-size"},
		{"spool sync bad", func(c *Config) { c.Lambda.SpoolSync = "sometimes" }, `lambda.spool-sync: must be one of interval, always, never, got "sometimes"`},
		{"retry min 0", func(c *Config) { c.Lambda.RetryMin = Duration{} }, "lambda.retry-min: must be a positive duration"},
		{"retry max below min", func(c *Config) { c.Lambda.RetryMax = Duration{500 * time.Millisecond} }, "lambda.retry-max: must not be less than retry-min (1s), got 500ms"},
		{"submit timeout negative", func(c *Config) { c.Lambda.SubmitTimeout = Duration{-time.Second} }, "lambda.submit-timeout: must be a positive duration"},
		{"tracer memory too small", func(c *Config) { c.Lambda.TracerMemoryMax = 1024 }, "lambda.tracer-memory-max: must be between 16777216 and"},
		{"tracer pids negative", func(c *Config) { c.Lambda.TracerPidsMax = -1 }, "lambda.tracer-pids-max: must be between 8 and"},
		{"tracer limits unknown", func(c *Config) { c.Lambda.TracerLimits = "strict" }, `lambda.tracer-limits: must be one of required, best-effort, got "strict"`},
		{"bpf env allow empty entry", func(c *Config) { c.Lambda.BPFEnvAllow = []string{"BPFTRACE_*=any", ""} }, `lambda.bpf-env-allow: entry "": want NAME=KIND`},
		{"bpf env allow old pattern", func(c *Config) { c.Lambda.BPFEnvAllow = []string{"BPFTRACE_*"} }, `lambda.bpf-env-allow: entry "BPFTRACE_*": want NAME=KIND`},
		{"bpf env allow bad bounds", func(c *Config) { c.Lambda.BPFEnvAllow = []string{"BPFTRACE_STRLEN=int:200..1"} }, `lambda.bpf-env-allow: entry "BPFTRACE_STRLEN=int:200..1": int bounds 200..1`},
		{"stap env allow bad kind", func(c *Config) { c.Lambda.StapEnvAllow = []string{"A=B"} }, `lambda.stap-env-allow: entry "A=B": unknown kind "B"`},
		{"stap env allow bad name", func(c *Config) { c.Lambda.StapEnvAllow = []string{"A-B=bool"} }, `lambda.stap-env-allow: entry "A-B=bool": the name may hold only`},
		{"listen empty", func(c *Config) { c.Server.Listen = "" }, "server.listen: missing"},
		{"listen no port", func(c *Config) { c.Server.Listen = "127.0.0.1" }, `server.listen: must be host:port, got "127.0.0.1"`},
		{"listen named port", func(c *Config) { c.Server.Listen = "localhost:http" }, `server.listen: port must be a number from 0 to 65535, got "http"`},
		{"listen port too big", func(c *Config) { c.Server.Listen = "localhost:65536" }, `server.listen: port must be a number`},
		{"bad log level", func(c *Config) { c.Server.LogLevel = "verbose" }, `server.log-level: must be one of debug, info, warn, error, got "verbose"`},
		{"log level case", func(c *Config) { c.Server.LogLevel = "INFO" }, `server.log-level: must be one of`},
		{"bad log format", func(c *Config) { c.Server.LogFormat = "xml" }, `server.log-format: must be one of text, json, got "xml"`},
		{"request timeout 0", func(c *Config) { c.Server.RequestTimeout = Duration{} }, "server.request-timeout: must be a positive duration"},
		{"shutdown timeout negative", func(c *Config) { c.Server.ShutdownTimeout = Duration{-time.Second} }, "server.shutdown-timeout: must be a positive duration"},
		{"max body 0", func(c *Config) { c.Server.MaxBodyBytes = 0 }, "server.max-body-bytes: must be between 1 and 1073741824, got 0"},
		{"max body negative", func(c *Config) { c.Server.MaxBodyBytes = -5 }, "server.max-body-bytes: must be between 1 and 1073741824, got -5"},
		{"database url empty", func(c *Config) { c.Database.URL = "" }, "database.url: missing"},
		{"database url no scheme", func(c *Config) { c.Database.URL = "lambda.db" }, `database.url: must be sqlite://PATH, postgres://... or postgresql://..., got "lambda.db"`},
		{"database url mysql", func(c *Config) { c.Database.URL = "mysql://db/x" }, `database.url: unsupported scheme "mysql"`},
		{"database url sqlite empty", func(c *Config) { c.Database.URL = "sqlite://" }, "database.url: nothing after sqlite://"},
		{"database url postgres empty", func(c *Config) { c.Database.URL = "postgres://" }, "database.url: nothing after postgres://"},
		{"auth memory below own header", func(c *Config) { c.Auth.MaxMemoryKiB = 4095 }, "auth.max-memory-kib: must be between 4096 and 1048576, got 4095"},
		{"auth memory huge", func(c *Config) { c.Auth.MaxMemoryKiB = 1<<20 + 1 }, "auth.max-memory-kib: must be between 4096 and 1048576"},
		{"auth iterations below own header", func(c *Config) { c.Auth.MaxIterations = 2 }, "auth.max-iterations: must be between 3 and 1000, got 2"},
		{"auth parallelism 0", func(c *Config) { c.Auth.MaxParallelism = 0 }, "auth.max-parallelism: must be at least 1, got 0"},
		{"auth concurrent 0", func(c *Config) { c.Auth.MaxConcurrent = 0 }, "auth.max-concurrent: must be at least 1, got 0"},
		{"auth cache size negative", func(c *Config) { c.Auth.CacheSize = -1 }, "auth.cache-size: must be at least 0, got -1"},
		{"auth cache ttl 0", func(c *Config) { c.Auth.CacheTTL = Duration{} }, "auth.cache-ttl: must be a positive duration"},
		{"auth max wait 0", func(c *Config) { c.Auth.MaxWait = Duration{} }, "auth.max-wait: must be a positive duration"},
		{"auth max wait an hour", func(c *Config) { c.Auth.MaxWait = Duration{time.Hour} }, "auth.max-wait: must be at most 1m0s"},
		{"auth max queue 0", func(c *Config) { c.Auth.MaxQueue = 0 }, "auth.max-queue: must be at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			ps := problems(err)
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(ps), err)
			}
			if !strings.HasPrefix(ps[0].Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", ps[0].Error(), tt.want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || !strings.HasPrefix(tt.want, ke.Key+": ") {
				t.Errorf("KeyError = %+v, want key of %q", ke, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Lambda.Secret = ""
	c.Lambda.SubmitChunkSize = 0
	c.Server.LogLevel = "loud"
	got := keysOf(c.Validate())
	want := []string{"server.log-level", "lambda.secret", "lambda.submit-chunk-size"}
	if !slices.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func TestSlogLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{{"debug", "DEBUG"}, {"info", "INFO"}, {"warn", "WARN"}, {"error", "ERROR"}} {
		if got := (Server{LogLevel: tt.in}).SlogLevel().String(); got != tt.want {
			t.Errorf("SlogLevel(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSpoolDir(t *testing.T) {
	c := Default()
	c.Lambda.DataDir = "var/data/"
	if got := c.SpoolDir(); got != "var/data/spool" {
		t.Fatalf("SpoolDir = %q", got)
	}
}
