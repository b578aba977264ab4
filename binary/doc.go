// Package binary checks a trace template against the binary it names, before
// any tracer is started: the preflight of PUT /trace and of every start.
//
// It owns three things:
//
//   - Reading a binary's ELF symbol tables (Read, Inspect): .symtab and
//     .dynsym of an executable or a shared library, keeping the names of the
//     defined function symbols (STT_FUNC and STT_GNU_IFUNC with a section and
//     an address), with symbol versions ("malloc@@GLIBC_2.2.5") cut off and
//     duplicates removed: the names bpftrace and SystemTap can attach a
//     uprobe to. It also recognises a Go binary (a .go.buildinfo or
//     .gopclntab section, or the runtime.morestack symbol) and refuses a file
//     that is not ELF or not built for the host's architecture. Reading is
//     bounded (file size, symbol table size, symbol count) so a hostile file
//     cannot make it allocate without limit; it never panics on garbage.
//   - Matching a template's functions against those names (Checker.Check):
//     every name or wildcard must match at least one symbol, with the
//     tracer's own wildcard rules (bpftrace: "*"; SystemTap: "*" and "?"),
//     and the expanded number of probed functions is bounded by
//     lambda.max-probes. Refusals are *validate.FieldError values naming
//     "process", "functions", "functions[i]" or "mode", so they match
//     validate.ErrInvalid and an HTTP layer answers 400 with err.Error().
//     A template on a Go binary may only use mode events, at entry only:
//     a return probe (uretprobe, which SystemTap's .return uses too) corrupts
//     the goroutine stack and crashes the program.
//   - The identity of a binary (Identity: device, inode, size, mtime), taken
//     when it was checked, and Identity.Check, which says whether the path
//     still names that same file. The trace runtime uses it against a binary
//     replaced after the preflight (time of check to time of use): uprobes
//     are attached by inode, so a file swapped in afterwards is not what the
//     probes watch, and the trace is ended rather than reporting events that
//     would be mistaken for the new file's.
//
// A Cache keyed by Identity keeps the symbol names of recently read binaries
// (bounded in bytes), so a start does not re-read a 100 MB binary that PUT
// already read. A Checker and its Cache are safe for concurrent use.
//
// What is and is not promised about a binary replaced under a trace is in
// the README ("Security"): in short, the trace is killed with reason
// binary-changed within about a second of the path naming another file;
// events the tracer printed before that came from the file that was checked.
package binary
