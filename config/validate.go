package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-endpoint/lambda-endpoint/validate"
)

// Limits Validate enforces beyond "positive".
const (
	maxSubmitChunkSize = 64 << 20 // one chunk is base64-encoded into one JSON body
	maxBodyBytes       = 1 << 30
	maxStderrLimit     = 16 << 20 // sent whole in the finishing message
	// maxProbes bounds lambda.max-probes (binary.MaxProbesLimit): each
	// probe is a uprobe every process running the binary hits.
	maxProbes = 4096
	// Auth limits may not go below the cost of the endpoint's own outgoing
	// header (m=4096, t=3, p=1): the header `lambda-endpoint token` prints
	// must be accepted by the same configuration.
	minAuthMemoryKiB   = 4096
	maxAuthMemoryKiB   = 1 << 20 // 1 GiB per verification
	minAuthIterations  = 3
	maxAuthIterations  = 1000
	minAuthParallelism = 1
	maxAuthWait        = time.Minute
	// A tracer needs some room to start at all: bpftrace alone is ~40 MiB.
	minTracerMemoryMax = 16 << 20
	minTracerPidsMax   = 8
)

// Validate checks every value and returns all problems joined
// (errors.Join), each a *KeyError naming the key with its section, such as
// "lambda.endpoint-uuid: missing" or "lambda.submit-chunk-size: must be at
// least 1, got 0". Every error it returns wraps ErrInvalid. Validate does
// not touch the file system.
func (c *Config) Validate() error {
	v := &validator{}
	c.Server.validate(v)
	c.Database.validate(v)
	c.Lambda.validate(v)
	c.Auth.validate(v)
	return errors.Join(v.errs...)
}

// validator collects the problems of one Validate call.
type validator struct {
	errs []error
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) atLeast(key string, got, lo int64) {
	if got < lo {
		v.fail(key, "must be at least %d, got %d", lo, got)
	}
}

func (v *validator) between(key string, got, lo, hi int64) {
	if got < lo || got > hi {
		v.fail(key, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (v *validator) positive(key string, d Duration) {
	if d.Duration <= 0 {
		v.fail(key, "must be a positive duration, got %s", d.Duration)
	}
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
}

func (v *validator) absPath(key, p string) {
	switch {
	case p == "":
		v.fail(key, "missing")
	case !filepath.IsAbs(p):
		v.fail(key, "must be an absolute path, got %q", p)
	case strings.ContainsRune(p, 0):
		v.fail(key, "must not contain NUL")
	}
}

func (s *Server) validate(v *validator) {
	if s.Listen == "" {
		v.fail("server.listen", "missing")
	} else if _, port, err := net.SplitHostPort(s.Listen); err != nil {
		v.fail("server.listen", "must be host:port, got %q", s.Listen)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.fail("server.listen", "port must be a number from 0 to 65535, got %q", port)
	}
	if s.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(s.MetricsListen); err != nil {
			v.fail("server.metrics-listen", `must be host:port or "" (off), got %q`, s.MetricsListen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			v.fail("server.metrics-listen", "port must be a number from 0 to 65535, got %q", port)
		}
	}
	v.oneOf("server.log-level", s.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("server.log-format", s.LogFormat, "text", "json")
	v.positive("server.request-timeout", s.RequestTimeout)
	v.positive("server.shutdown-timeout", s.ShutdownTimeout)
	v.between("server.max-body-bytes", s.MaxBodyBytes, 1, maxBodyBytes)
	switch {
	case s.TLSCert != "" && s.TLSKey == "":
		v.fail("server.tls-key", "missing: server.tls-cert is set, and TLS needs both (or neither, for plain HTTP)")
	case s.TLSKey != "" && s.TLSCert == "":
		v.fail("server.tls-cert", "missing: server.tls-key is set, and TLS needs both (or neither, for plain HTTP)")
	}
	if strings.ContainsRune(s.TLSCert, 0) {
		v.fail("server.tls-cert", "must not contain NUL")
	}
	if strings.ContainsRune(s.TLSKey, 0) {
		v.fail("server.tls-key", "must not contain NUL")
	}
}

// SlogLevel is LogLevel as a slog.Level (info for an unknown name, which
// Validate refuses).
func (s Server) SlogLevel() slog.Level {
	switch s.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (d *Database) validate(v *validator) {
	if d.URL == "" {
		v.fail("database.url", "missing")
		return
	}
	scheme, rest, ok := strings.Cut(d.URL, "://")
	switch {
	case !ok:
		v.fail("database.url", "must be sqlite://PATH, postgres://... or postgresql://..., got %q", redactURL(d.URL))
	case scheme != "sqlite" && scheme != "postgres" && scheme != "postgresql":
		v.fail("database.url", "unsupported scheme %q (want sqlite, postgres or postgresql)", scheme)
	case rest == "":
		v.fail("database.url", "nothing after %s://", scheme)
	}
}

func (l *Lambda) validate(v *validator) {
	switch {
	case l.EndpointUUID == "":
		v.fail("lambda.endpoint-uuid", "missing")
	case !isUUID(l.EndpointUUID):
		v.fail("lambda.endpoint-uuid", "must be a UUID like 4633d686-f75d-4d1f-8415-02ce37d9e5f8, got %q", l.EndpointUUID)
	}
	if l.Secret == "" {
		v.fail("lambda.secret", "missing")
	}
	validatePlatformURL(v, l.PlatformURL)
	v.between("lambda.submit-chunk-size", int64(l.SubmitChunkSize), 1, maxSubmitChunkSize)
	v.absPath("lambda.bpf-path", l.BPFPath)
	v.absPath("lambda.stap-path", l.StapPath)
	v.absPath("lambda.sudo-path", l.SudoPath)
	if strings.ContainsAny(l.RootPassword, "\n\r\x00") {
		// sudo -S reads one line from stdin.
		v.fail("lambda.root-password", "must not contain a newline or NUL")
	}
	v.absPath("lambda.trace-dir", l.TraceDir)
	if c := l.CgroupParent; c != "" && c != "-" {
		v.absPath("lambda.cgroup-parent", c)
	}
	if l.DataDir == "" {
		v.fail("lambda.data-dir", "missing")
	} else if strings.ContainsRune(l.DataDir, 0) {
		v.fail("lambda.data-dir", "must not contain NUL")
	}
	v.positive("lambda.flush-interval", l.FlushInterval)
	if l.MaxLasting.Duration < time.Second {
		v.fail("lambda.max-lasting", "must be at least 1s, got %s", l.MaxLasting.Duration)
	}
	v.atLeast("lambda.max-traces", int64(l.MaxTraces), 1)
	v.positive("lambda.kill-grace", l.KillGrace)
	v.between("lambda.stderr-limit", int64(l.StderrLimit), 0, maxStderrLimit)
	if l.SpoolMaxBytes < int64(l.SubmitChunkSize) || l.SpoolMaxBytes < 1 {
		v.fail("lambda.spool-max-bytes", "must be at least submit-chunk-size (%d), got %d", l.SubmitChunkSize, l.SpoolMaxBytes)
	}
	v.oneOf("lambda.spool-sync", l.SpoolSync, SpoolSyncInterval, SpoolSyncAlways, SpoolSyncNever)
	v.positive("lambda.retry-min", l.RetryMin)
	v.positive("lambda.retry-max", l.RetryMax)
	if l.RetryMin.Duration > 0 && l.RetryMax.Duration < l.RetryMin.Duration {
		v.fail("lambda.retry-max", "must not be less than retry-min (%s), got %s", l.RetryMin.Duration, l.RetryMax.Duration)
	}
	v.positive("lambda.submit-timeout", l.SubmitTimeout)
	if l.TracerMemoryMax != 0 {
		v.between("lambda.tracer-memory-max", l.TracerMemoryMax, minTracerMemoryMax, 1<<50)
	}
	if l.TracerPidsMax != 0 {
		v.between("lambda.tracer-pids-max", l.TracerPidsMax, minTracerPidsMax, 1<<22)
	}
	v.oneOf("lambda.tracer-limits", l.TracerLimits, TracerLimitsRequired, TracerLimitsBestEffort)
	validateEnvAllow(v, "lambda.bpf-env-allow", l.BPFEnvAllow)
	validateEnvAllow(v, "lambda.stap-env-allow", l.StapEnvAllow)
	v.between("lambda.max-probes", int64(l.MaxProbes), 1, maxProbes)
	if p := l.BPFPerfRBPages; p != 0 && (p < 1 || p > 256 || p&(p-1) != 0) {
		v.fail("lambda.bpf-perf-rb-pages", "must be 0 (bpftrace's default) or a power of two from 1 to 256, got %d", p)
	}
	v.oneOf("lambda.engine", l.Engine, EngineBPFtrace, EngineNative)
	if n := l.NativeRingBytes; n < MinNativeRingBytes || n > MaxNativeRingBytes || n&(n-1) != 0 {
		v.fail("lambda.native-ring-bytes", "must be a power of two from %d (4 KiB) to %d (256 MiB), got %d",
			MinNativeRingBytes, MaxNativeRingBytes, n)
	}
}

// validatePlatformURL requires an absolute http(s) URL with a host and no
// user info, query or fragment.
func validatePlatformURL(v *validator, raw string) {
	const key = "lambda.platform-url"
	if raw == "" {
		v.fail(key, "missing")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https":
		v.fail(key, "%q: must be an absolute http:// or https:// URL, e.g. %s", raw, urlExample(raw))
	case u.Host == "" || u.Hostname() == "":
		v.fail(key, "must name a host, got %q", raw)
	case u.User != nil:
		v.fail(key, "must not carry user info (the Authorization header authenticates), got %q", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery:
		v.fail(key, "must not have a query, got %q", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.fail(key, "must not have a fragment, got %q", raw)
	default:
		if port := u.Port(); port != "" {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				v.fail(key, "port must be a number from 0 to 65535, got %q", port)
			}
		}
	}
}

// urlExample suggests a valid platform-url for raw: raw behind http://
// when it has no scheme and reads as host:port, else the example config's.
func urlExample(raw string) string {
	if !strings.Contains(raw, "://") && raw != "" && !strings.HasPrefix(raw, "/") {
		if u, err := url.Parse("http://" + raw); err == nil && u.Hostname() != "" {
			return "http://" + raw
		}
	}
	return "http://127.0.0.1:8080"
}

// validateEnvAllow requires every entry to be NAME=KIND as
// validate.ParseEnvEntry reads it.
func validateEnvAllow(v *validator, key string, entries []string) {
	for _, e := range entries {
		if _, _, err := validate.ParseEnvEntry(e); err != nil {
			v.fail(key, "%s", err)
		}
	}
}

func (a *Auth) validate(v *validator) {
	v.between("auth.max-memory-kib", int64(a.MaxMemoryKiB), minAuthMemoryKiB, maxAuthMemoryKiB)
	v.between("auth.max-iterations", int64(a.MaxIterations), minAuthIterations, maxAuthIterations)
	v.atLeast("auth.max-parallelism", int64(a.MaxParallelism), minAuthParallelism)
	v.atLeast("auth.max-concurrent", int64(a.MaxConcurrent), 1)
	v.positive("auth.max-wait", a.MaxWait)
	if a.MaxWait.Duration > maxAuthWait {
		v.fail("auth.max-wait", "must be at most %s (a request waits that long for a verification slot), got %s", maxAuthWait, a.MaxWait.Duration)
	}
	v.atLeast("auth.max-queue", int64(a.MaxQueue), 1)
	v.atLeast("auth.cache-size", int64(a.CacheSize), 0)
	v.positive("auth.cache-ttl", a.CacheTTL)
}

// isUUID reports whether s is 8-4-4-4-12 hexadecimal digits (either case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
