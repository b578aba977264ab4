package config

import (
	"path/filepath"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/auth"
)

// Config is the whole configuration of lambda-endpoint, one field per TOML
// section.
type Config struct {
	Server   Server   `toml:"server"`
	Database Database `toml:"database"`
	Lambda   Lambda   `toml:"lambda"`
	Auth     Auth     `toml:"auth"`
}

// Server is the [server] section: the REST API listener and logging.
type Server struct {
	// Listen is the host:port of the REST API (env LAMBDA_LISTEN).
	Listen string `toml:"listen"`
	// MetricsListen is the host:port of the Prometheus /metrics endpoint
	// (no Authorization, like node_exporter: keep it on localhost); ""
	// turns it off (env LAMBDA_METRICS_LISTEN).
	MetricsListen string `toml:"metrics-listen"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log-level"`
	// LogFormat is text or json.
	LogFormat string `toml:"log-format"`
	// RequestTimeout bounds how long a handler waits for an actor's answer.
	RequestTimeout Duration `toml:"request-timeout"`
	// ShutdownTimeout bounds a graceful stop: killing tracers and delivering
	// what they produced.
	ShutdownTimeout Duration `toml:"shutdown-timeout"`
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes int64 `toml:"max-body-bytes"`
	// TLSCert is the PEM certificate file (the chain, leaf first) the REST
	// API presents; with TLSKey it turns TLS on (at least TLS 1.2), and
	// SIGHUP reloads both files. Set both or neither: "" serves plain
	// HTTP (env LAMBDA_TLS_CERT). A relative path is relative to the
	// working directory.
	TLSCert string `toml:"tls-cert"`
	// TLSKey is the PEM private key file of TLSCert (env LAMBDA_TLS_KEY).
	TLSKey string `toml:"tls-key"`
}

// TLS reports whether the REST API is served over TLS: both TLSCert and
// TLSKey are set (Validate refuses one without the other).
func (s Server) TLS() bool { return s.TLSCert != "" && s.TLSKey != "" }

// Database is the [database] section.
type Database struct {
	// URL selects the store: sqlite://relative/path.db,
	// sqlite:///absolute/path.db, sqlite://:memory:, or a postgres:// /
	// postgresql:// URL (env LAMBDA_DATABASE_URL).
	URL string `toml:"url"`
}

// Lambda is the [lambda] section: identity, platform, tracers and limits.
// Every key is overridable by the environment variable LAMBDA_<KEY> (upper
// case, '-' becomes '_').
type Lambda struct {
	// EndpointUUID identifies this endpoint; required, 8-4-4-4-12 hex.
	EndpointUUID string `toml:"endpoint-uuid"`
	// Secret is the shared secret behind the Authorization header; required.
	Secret string `toml:"secret"`
	// PlatformURL is the absolute http(s) base URL results are PUT to
	// ({platform-url}/submit); required.
	PlatformURL string `toml:"platform-url"`
	// SubmitChunkSize is the most raw tracer-output bytes in one chunk.
	SubmitChunkSize int `toml:"submit-chunk-size"`
	// BPFPath is the absolute path of the bpftrace executable.
	BPFPath string `toml:"bpf-path"`
	// StapPath is the absolute path of the SystemTap (stap) executable.
	StapPath string `toml:"stap-path"`
	// RootPassword is fed to sudo -S when the endpoint does not run as root.
	RootPassword string `toml:"root-password"`
	// SudoPath is the absolute path of sudo, used with RootPassword.
	SudoPath string `toml:"sudo-path"`
	// TraceDir is the absolute directory where <uuid>.trace scripts are
	// written; a script's path identifies its trace.
	TraceDir string `toml:"trace-dir"`
	// CgroupParent is where tracers get their cgroups (cgroup v2): "" for
	// one per data directory ("lambda-endpoint/<hash>") inside the
	// endpoint's own cgroup when systemd delegated it (Delegate=yes:
	// <unit>/tracers/..., the endpoint itself in <unit>/endpoint), else below
	// the cgroup2 mount; an absolute cgroup2 directory; or "-" for process
	// groups only.
	CgroupParent string `toml:"cgroup-parent"`
	// DataDir holds the endpoint's durable state (the spool in
	// <data-dir>/spool); a relative path is relative to the working
	// directory.
	DataDir string `toml:"data-dir"`
	// FlushInterval is how long tracer output may wait before it is sent as
	// a short chunk; also the fsync period of the "interval" spool mode.
	FlushInterval Duration `toml:"flush-interval"`
	// MaxLasting is the largest lasting a trace may ask for.
	MaxLasting Duration `toml:"max-lasting"`
	// MaxTraces is how many traces may run at once (429 beyond).
	MaxTraces int `toml:"max-traces"`
	// KillGrace is the wait between SIGINT and SIGKILL, and the watchdog's
	// grace after a trace's lasting ran out.
	KillGrace Duration `toml:"kill-grace"`
	// StderrLimit is how many bytes of tracer stderr are kept (the tail).
	StderrLimit int `toml:"stderr-limit"`
	// SpoolMaxBytes is how many unacknowledged bytes one trace may spool
	// before it is stopped (spool-full).
	SpoolMaxBytes int64 `toml:"spool-max-bytes"`
	// SpoolSync is the spool's fsync policy: SpoolSyncInterval,
	// SpoolSyncAlways or SpoolSyncNever.
	SpoolSync string `toml:"spool-sync"`
	// RetryMin is the first backoff of a failed submit.
	RetryMin Duration `toml:"retry-min"`
	// RetryMax caps the submit backoff.
	RetryMax Duration `toml:"retry-max"`
	// SubmitTimeout bounds one PUT /submit attempt.
	SubmitTimeout Duration `toml:"submit-timeout"`
	// AllowUnsafeOptions lets templates use tracer options that run
	// commands, write files, load code or lift safety checks.
	AllowUnsafeOptions bool `toml:"allow-unsafe-options"`
	// TracerMemoryMax is memory.max in bytes of each tracer's cgroup (the
	// kernel kills a tracer over it: reason memory-limit); 0 means no
	// limit.
	TracerMemoryMax int64 `toml:"tracer-memory-max"`
	// TracerPidsMax is pids.max of each tracer's cgroup: processes and
	// threads of one tracer; 0 means no limit.
	TracerPidsMax int64 `toml:"tracer-pids-max"`
	// TracerLimits is TracerLimitsRequired or TracerLimitsBestEffort.
	TracerLimits string `toml:"tracer-limits"`
	// BPFEnvAllow holds entries "NAME=KIND" that add to (or, "NAME=deny",
	// remove from) the built-in table of environment variables a BPF
	// template may set: KIND is int:LO..HI, pow2:LO..HI, bool, enum:A|B or
	// any; NAME may be a pattern such as BPFTRACE_*. In the environment,
	// comma-separated. See validate.DefaultEnv for the built-in table.
	BPFEnvAllow []string `toml:"bpf-env-allow"`
	// StapEnvAllow is BPFEnvAllow for STAP templates (built-in table empty).
	StapEnvAllow []string `toml:"stap-env-allow"`

	// MaxProbes is the most functions one template may probe once its
	// wildcards are expanded against the binary's symbols (400 beyond).
	MaxProbes int `toml:"max-probes"`
	// BPFPerfRBPages is bpftrace's perf ring buffer size in 4 KiB pages per
	// CPU (BPFTRACE_PERF_RB_PAGES) for templates that do not set it: a
	// power of two from 1 to 256; 0 leaves bpftrace's own default (64).
	BPFPerfRBPages int `toml:"bpf-perf-rb-pages"`
	// Engine runs BPF traces whose start request names none: EngineBPFtrace
	// (bpftrace at bpf-path, the seed's behaviour) or EngineNative (the
	// endpoint's own BPF engine, package tracer/native).
	Engine string `toml:"engine"`
	// NativeRingBytes is the native engine's ring buffer per trace in
	// bytes: a power of two from 4096 to 256 MiB.
	NativeRingBytes int `toml:"native-ring-bytes"`
}

// Auth is the [auth] section: limits on verifying incoming Authorization
// headers. Every key is overridable by LAMBDA_AUTH_<KEY>.
type Auth struct {
	// MaxMemoryKiB is the largest argon2 memory cost (m) accepted in a
	// presented hash; larger ones are refused without hashing.
	MaxMemoryKiB uint32 `toml:"max-memory-kib"`
	// MaxIterations is the largest argon2 time cost (t) accepted.
	MaxIterations uint32 `toml:"max-iterations"`
	// MaxParallelism is the largest argon2 parallelism (p) accepted.
	MaxParallelism uint8 `toml:"max-parallelism"`
	// MaxConcurrent is how many argon2 verifications may run at once. In
	// the file and the environment 0 means auth.DefaultConcurrent() (half the
	// CPUs, 1 to 4); Load resolves
	// it, so a loaded Config always holds a positive number. Memory spent
	// on hashing is at most MaxConcurrent × MaxMemoryKiB.
	MaxConcurrent int `toml:"max-concurrent"`
	// MaxWait is how long a request waits for a verification slot before
	// it is answered 503 with Retry-After.
	MaxWait Duration `toml:"max-wait"`
	// MaxQueue is how many requests may wait for a verification slot at
	// once; more are answered 503 at once.
	MaxQueue int `toml:"max-queue"`
	// CacheSize is how many verified headers are remembered; 0 disables
	// the cache.
	CacheSize int `toml:"cache-size"`
	// CacheTTL is how long a verified header is remembered.
	CacheTTL Duration `toml:"cache-ttl"`
}

// Values of Lambda.TracerLimits.
const (
	// TracerLimitsRequired refuses to start a tracer whose limits cannot
	// be set (the trace ends failed-to-start).
	TracerLimitsRequired = "required"
	// TracerLimitsBestEffort runs such a tracer without them and logs a
	// warning once (the default).
	TracerLimitsBestEffort = "best-effort"
)

// Values of Lambda.Engine (messages.EngineBPFtrace and EngineNative).
const (
	// EngineBPFtrace runs bpftrace: the default.
	EngineBPFtrace = "bpftrace"
	// EngineNative runs the endpoint's own BPF engine.
	EngineNative = "native"
)

// Bounds of Lambda.NativeRingBytes (those of tracer/native's
// MinRingBytes, MaxRingBytes and DefaultRingBytes).
const (
	MinNativeRingBytes     = 4 << 10
	MaxNativeRingBytes     = 256 << 20
	DefaultNativeRingBytes = 4 << 20
)

// Values of Lambda.SpoolSync.
const (
	// SpoolSyncInterval fsyncs at most once per flush-interval and at the
	// end of a trace (the default).
	SpoolSyncInterval = "interval"
	// SpoolSyncAlways fsyncs after every write.
	SpoolSyncAlways = "always"
	// SpoolSyncNever leaves flushing to the operating system.
	SpoolSyncNever = "never"
)

// Default returns the configuration with every default filled in. It does
// not validate: endpoint-uuid, secret and platform-url have no default and
// must be set before Validate passes.
func Default() Config {
	return Config{
		Server: Server{
			Listen:          "127.0.0.1:3000",
			MetricsListen:   "127.0.0.1:9464",
			LogLevel:        "info",
			LogFormat:       "text",
			RequestTimeout:  Duration{5 * time.Second},
			ShutdownTimeout: Duration{15 * time.Second},
			MaxBodyBytes:    1 << 20,
		},
		Database: Database{
			URL: "sqlite://lambda-endpoint.db",
		},
		Lambda: Lambda{
			SubmitChunkSize:    51200,
			BPFPath:            "/usr/bin/bpftrace",
			StapPath:           "/usr/bin/stap",
			SudoPath:           "/usr/bin/sudo",
			TraceDir:           "/tmp",
			DataDir:            "/var/lib/lambda-endpoint",
			FlushInterval:      Duration{time.Second},
			MaxLasting:         Duration{24 * time.Hour},
			MaxTraces:          32,
			KillGrace:          Duration{5 * time.Second},
			StderrLimit:        65536,
			SpoolMaxBytes:      1 << 30,
			SpoolSync:          SpoolSyncInterval,
			RetryMin:           Duration{time.Second},
			RetryMax:           Duration{30 * time.Second},
			SubmitTimeout:      Duration{30 * time.Second},
			AllowUnsafeOptions: false,
			TracerMemoryMax:    512 << 20,
			TracerPidsMax:      64,
			TracerLimits:       TracerLimitsBestEffort,
			BPFEnvAllow:        []string{},
			StapEnvAllow:       []string{},

			MaxProbes:       40,
			BPFPerfRBPages:  256,
			Engine:          EngineBPFtrace,
			NativeRingBytes: DefaultNativeRingBytes,
		},
		Auth: Auth{
			MaxMemoryKiB:   16384,
			MaxIterations:  6,
			MaxParallelism: 4,
			MaxConcurrent:  auth.DefaultConcurrent(),
			MaxWait:        Duration{time.Second},
			MaxQueue:       64,
			CacheSize:      1024,
			CacheTTL:       Duration{10 * time.Minute},
		},
	}
}

// SpoolDir is the directory of the durable chunk spool: <data-dir>/spool.
func (c *Config) SpoolDir() string {
	return filepath.Join(c.Lambda.DataDir, "spool")
}
