// Package validate checks trace templates before any of their fields reach a
// tracer script, a command line, an environment or a file path that runs as
// root. Every check is an allow-list: what is not listed below is refused.
// A refusal is a *FieldError naming the offending field (for example
// "functions[2]" or "options[0]"); every refusal matches ErrInvalid with
// errors.Is, so an HTTP layer can answer 400 with err.Error().
//
// # Process
//
// An absolute path, equal to filepath.Clean of itself (no "..", ".", "//" or
// trailing slash), at most 4096 bytes, no component longer than 255 bytes,
// made only of ASCII letters, digits and / . _ - + @ , ~ =
// (so no whitespace, quotes, backslashes, braces, colons, control or
// non-ASCII characters, "$" or "*").
//
// # Functions
//
// One to 256 names, each 1 to 256 bytes of ASCII letters, digits and
// _ . $ @ plus the wildcards * and ?. bpftrace (0.17 and later) has no "?"
// wildcard and would silently probe nothing, so "?" is refused for BPF
// templates. SystemTap reads "@" as its "function@file" source-file
// qualifier.
//
// # Environment
//
// At most 64 variables; environment and value have the same length. A name
// matches ^[A-Za-z_][A-Za-z0-9_]*$ (at most 256 bytes) and one of the glob
// patterns (path.Match syntax) that Rules.EnvAllow lists for the template's
// tracer: by default BPFTRACE_* for BPF and SYSTEMTAP_* for STAP, so
// LD_PRELOAD, PATH and friends are refused. A value is at most 4096 bytes
// and holds no NUL, newline or carriage return.
//
// # Options
//
// At most 64 command-line elements. Each option is its own element; an
// option that takes an argument takes the next element. Allowed:
//
//	bpftrace: -B none|line|full, -f text|json, -v, -k, -kk, --no-warnings,
//	          -q, -p PID
//	stap:     -v, -vv, -vvv, -w, --suppress-handler-errors, -x PID,
//	          -s NUM (buffer size in MB, 1..4096)
//
// A PID is a decimal integer from 1 to 4194303 without sign, spaces or
// leading zeros. Everything else is refused, in particular the options that
// run commands, write files, load code or lift safety checks: bpftrace -c,
// --unsafe, -o, -e, -I, --include; stap -c, -g/--guru-mode, -o, -e, -I, -r,
// -B, -m, -D, -R, -F, -S, -p. When Rules.AllowUnsafeOptions (the operator's
// allow-unsafe-options switch) is on, any element is accepted as long as it
// is at most 4096 bytes and holds no NUL, newline or carriage return.
//
// # Lasting
//
// A trace lasts from 1 second to a configured maximum (DefaultMaxLasting,
// one day, unless configured).
package validate
