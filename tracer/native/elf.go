package native

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"go/version"
	"io"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/lambda-endpoint/lambda-endpoint/binary"
	"github.com/lambda-endpoint/lambda-endpoint/messages"
)

// Bounds of the planning of one start, so that a hostile binary cannot
// make it allocate or compute without limit. The largest function of a
// real Go program is far smaller (the endpoint's own is under 100 KiB:
// sqlite's interpreter loop, compiled to Go).
const (
	// MaxFunctionBytes is the most code one Go function may hold to be
	// traced: all of it is disassembled to find its RET instructions.
	MaxFunctionBytes = 1 << 20
	// MaxInstructions is the most instructions one start disassembles, all
	// its Go functions together (at about 6 million a second on one core
	// of this class of machine, a third of a second at worst).
	MaxInstructions = 2 << 20
)

// ErrTooLarge is wrapped when a binary needs more planning than the bounds
// allow (MaxFunctionBytes, MaxInstructions).
var ErrTooLarge = errors.New("beyond the native engine's bounds")

// function is one probed function of the binary.
type function struct {
	// Name is the symbol name, as in the probe names.
	Name string
	// Addr is where the function's code is in the file (its symbol's
	// address translated by its executable PT_LOAD segment): what the
	// kernel attaches a uprobe to.
	Addr uint64
	// Entry is where the entry probe sits, relative to Addr: 0 for C,
	// after the stack-check prologue for Go.
	Entry uint64
	// Returns are the offsets of the RET instructions relative to Addr
	// (Go only: a C function's return is a uretprobe).
	Returns []uint64
}

// binaryInfo is what the engine learnt about the traced binary.
type binaryInfo struct {
	// Go reports a binary built by the Go toolchain: the preflight's
	// verdict (binary.Symbols.Go), never a second opinion.
	Go bool
	// GoVersion is the toolchain's version, e.g. "go1.26.8", when Go.
	GoVersion string
	// Functions are the probed functions, in the order the Spec names them
	// (a wildcard's matches in name order), each once.
	Functions []function
}

// regabi reports whether Go functions of the binary hold the current
// goroutine in R14 (the register ABI, amd64 since Go 1.17).
func (b *binaryInfo) regabi() bool {
	return b.Go && b.GoVersion != "" && version.Compare(version.Lang(b.GoVersion), "go1.17") >= 0
}

// Plan is a native trace worked out before it starts: the binary opened
// once (binary.Open), the functions resolved to the places of their
// probes. Everything that can refuse a binary is done by Prepare, so a
// caller can answer a bad request at once; Start then only loads and
// attaches. A Plan that is not started must be closed.
type Plan struct {
	spec Spec
	file *binary.File
	info *binaryInfo
}

// Prepare plans the trace s of the opened binary f, whose symbols (from
// the preflight, binary.Checker) are syms: it refuses a binary the engine
// cannot trace safely (another architecture; a Go binary whose toolchain
// version cannot be read, or one before go1.17 in modes calls and
// summary), resolves the functions, and disassembles each Go function to
// find its entry and RET instructions, within MaxFunctionBytes and
// MaxInstructions and until ctx ends. It takes f: the Plan closes it, and
// so does Prepare when it fails. Errors wrap ErrNotSupported, ErrNoSymbol,
// ErrNoReturn or ErrTooLarge where they apply, or ctx's error.
func Prepare(ctx context.Context, f *binary.File, syms *binary.Symbols, s Spec) (_ *Plan, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("planning native trace of %s: malformed binary (%v)", s.Process, p)
		}
		if err != nil {
			_ = f.Close()
		}
	}()
	if err := s.normalize(); err != nil {
		return nil, fmt.Errorf("checking native trace: %w", err)
	}
	info, err := plan(ctx, f, syms, s)
	if err != nil {
		return nil, err
	}
	return &Plan{spec: s, file: f, info: info}, nil
}

// Identity is the identity of the binary the plan probes.
func (p *Plan) Identity() binary.Identity { return p.file.Identity() }

// Go reports whether the plan's binary is a Go binary (the preflight's
// verdict).
func (p *Plan) Go() bool { return p.info.Go }

// Close releases the plan's binary. Start closes it itself.
func (p *Plan) Close() error { return p.file.Close() }

// plan is Prepare's work.
func plan(ctx context.Context, f *binary.File, syms *binary.Symbols, s Spec) (*binaryInfo, error) {
	path := s.Process
	if syms.Machine != elf.EM_X86_64.String() {
		return nil, fmt.Errorf("reading %s: %w: %s binaries (the native engine traces x86-64 ones)", path, ErrNotSupported, syms.Machine)
	}
	info := &binaryInfo{Go: syms.Go, GoVersion: syms.GoVersion}
	if info.Go && info.GoVersion == "" {
		// The calling convention (where the goroutine is, whether R14
		// holds it) depends on the toolchain: never guessed.
		return nil, fmt.Errorf("tracing %s: %w: it is a Go binary whose build information cannot be read (stripped, corrupted or very old), so its calling convention is unknown; use engine bpftrace in mode events", path, ErrNotSupported)
	}
	returns := s.Mode == messages.ModeCalls || s.Mode == messages.ModeSummary
	if returns && info.Go && !info.regabi() {
		return nil, fmt.Errorf("tracing %s: %w: mode %s on a binary built by %s (before go1.17, whose register ABI it relies on)",
			path, ErrNotSupported, s.Mode, info.GoVersion)
	}
	ef, err := binary.NewELF(f, f.Identity().Size)
	if err != nil {
		return nil, fmt.Errorf("reading ELF file %s: %w", path, err)
	}
	list, err := binary.FunctionSymbols(ef)
	if err != nil {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	symbols := make(map[string]binary.FunctionSymbol, len(list))
	names := make([]string, 0, len(list))
	for _, sym := range list {
		symbols[sym.Name] = sym
		names = append(names, sym.Name)
	}
	sort.Strings(names)

	seen := map[string]bool{}
	probes := 0
	budget := MaxInstructions
	for _, p := range s.Functions {
		matched := binary.Match(messages.BPF, p, names)
		if len(matched) == 0 {
			if strings.Contains(p, "*") {
				return nil, fmt.Errorf("resolving %s in %s: %w: the wildcard matches no function symbol", strconv.Quote(p), path, ErrNoSymbol)
			}
			return nil, fmt.Errorf("resolving %s in %s: %w: misspelt, inlined by the compiler everywhere it is called, or stripped", strconv.Quote(p), path, ErrNoSymbol)
		}
		for _, n := range matched {
			if seen[n] {
				continue
			}
			seen[n] = true
			sym := symbols[n]
			fn := function{Name: n}
			if info.Go && sym.Size > MaxFunctionBytes {
				// Before anything else about it: all of a Go function
				// would be read and disassembled.
				return nil, fmt.Errorf("disassembling %s in %s: %w: the function holds %d bytes of code, more than %d",
					n, path, ErrTooLarge, sym.Size, MaxFunctionBytes)
			}
			if fn.Addr, err = fileOffset(ef, sym); err != nil {
				return nil, fmt.Errorf("locating %s in %s: %w", n, path, err)
			}
			if info.Go {
				code, err := symbolBytes(ef, sym)
				if err != nil {
					return nil, fmt.Errorf("reading the code of %s in %s: %w", n, path, err)
				}
				fn.Entry, fn.Returns, err = goProbeOffsets(ctx, code, &budget, s.MaxProbes-probes-1)
				if err != nil {
					return nil, fmt.Errorf("disassembling %s in %s: %w", n, path, err)
				}
				if len(fn.Returns) == 0 {
					return nil, fmt.Errorf("disassembling %s in %s: %w: no RET instruction (the function never returns, or ends in a tail call)", n, path, ErrNoReturn)
				}
				probes += 1 + len(fn.Returns)
			} else {
				probes += 2
			}
			if probes > s.MaxProbes {
				return nil, fmt.Errorf("resolving functions in %s: more than %d probes are needed (entries and returns); name fewer functions", path, s.MaxProbes)
			}
			info.Functions = append(info.Functions, fn)
		}
	}
	return info, nil
}

// fileOffset returns where the code of the function symbol s is in the
// file: its address translated by the executable PT_LOAD segment holding
// it. A symbol outside every such segment is refused (the kernel would
// attach at a meaningless place).
func fileOffset(f *elf.File, s binary.FunctionSymbol) (uint64, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 {
			continue
		}
		if p.Vaddr <= s.Value && s.Value < p.Vaddr+p.Filesz {
			off := s.Value - p.Vaddr + p.Off
			if off == 0 {
				break
			}
			return off, nil
		}
	}
	return 0, fmt.Errorf("address %#x is in no executable segment of the file", s.Value)
}

// symbolBytes returns the code of the function symbol s, at most
// MaxFunctionBytes.
func symbolBytes(f *elf.File, s binary.FunctionSymbol) ([]byte, error) {
	if int(s.Section) >= len(f.Sections) || s.Section >= elf.SHN_LORESERVE {
		return nil, fmt.Errorf("symbol in section %d, not in a code section", s.Section)
	}
	sec := f.Sections[s.Section]
	if sec.Type == elf.SHT_NOBITS || s.Value < sec.Addr || s.Value-sec.Addr > sec.Size || s.Size > sec.Size-(s.Value-sec.Addr) {
		return nil, fmt.Errorf("symbol outside its section %s", sec.Name)
	}
	if s.Size == 0 {
		return nil, errors.New("symbol size 0")
	}
	if s.Size > MaxFunctionBytes {
		return nil, fmt.Errorf("%w: the function holds %d bytes of code, more than %d", ErrTooLarge, s.Size, MaxFunctionBytes)
	}
	code := make([]byte, s.Size)
	if _, err := sec.ReadAt(code, int64(s.Value-sec.Addr)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return code, nil
}

// prologueWindow is how many instructions from a Go function's start may
// hold its stack check.
const prologueWindow = 8

// goProbeOffsets disassembles the code of a Go function (amd64) and
// returns where its entry probe goes and the offsets of its RET
// instructions.
//
// The entry probe goes right after the stack-check prologue
//
//	CMPQ SP, 16(R14)      (or LEAQ -n(SP), R12; CMPQ R12, 16(R14))
//	JBE  morestack-path   (the path calls runtime.morestack and jumps
//	                       back to the function's first instruction)
//
// so a call that grows its stack passes the probe once, after the stack
// has grown, instead of once per attempt. The stack pointer is the same
// there as at the first instruction (a compare and a branch do not move
// it). A function without the check (NOSPLIT) gets its probe at offset 0.
//
// The code is decoded linearly from the start (the Go toolchain puts no
// data between instructions); an instruction that does not decode is an
// error, so no probe can land inside an instruction.
//
// Only what the probes need is kept: the first prologueWindow instructions
// and the RET offsets. Each decoded instruction costs one of *budget (an
// error wrapping ErrTooLarge when it runs out); more than maxRets RET
// instructions is an error too (they would need more probes than allowed);
// ctx is checked as it goes.
func goProbeOffsets(ctx context.Context, code []byte, budget *int, maxRets int) (entry uint64, rets []uint64, err error) {
	var window [prologueWindow + 1]x86asm.Inst
	var offs [prologueWindow + 1]uint64
	n := 0
	for off := 0; off < len(code); {
		if *budget <= 0 {
			return 0, nil, fmt.Errorf("%w: the functions probed hold more than %d instructions", ErrTooLarge, MaxInstructions)
		}
		*budget--
		if *budget%(1<<14) == 0 {
			if err := ctx.Err(); err != nil {
				return 0, nil, err
			}
		}
		in, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			// Padding after the last instruction (INT3 decodes; zero
			// bytes after a final RET or JMP may not).
			if allPadding(code[off:]) {
				break
			}
			return 0, nil, fmt.Errorf("decoding the instruction at offset %d: %w", off, err)
		}
		if n < len(window) {
			window[n], offs[n] = in, uint64(off)
			n++
		}
		if in.Op == x86asm.RET {
			if len(rets) >= maxRets {
				return 0, nil, fmt.Errorf("more than %d RET instructions: each needs a probe, more than the trace may attach", max(maxRets, 0))
			}
			rets = append(rets, uint64(off))
		}
		off += in.Len
	}
	for i := 0; i < n-1 && i < prologueWindow; i++ {
		if isStackGuardCmp(window[i]) && isCondJump(window[i+1]) {
			entry = offs[i+1] + uint64(window[i+1].Len)
			break
		}
	}
	return entry, rets, nil
}

// allPadding reports whether b holds only INT3 or zero bytes.
func allPadding(b []byte) bool {
	for _, c := range b {
		if c != 0xcc && c != 0 {
			return false
		}
	}
	return true
}

// isStackGuardCmp reports whether in compares a register with the stack
// guard of the goroutine, 16(reg): g.stackguard0, g in R14 (register ABI)
// or loaded from TLS before Go 1.17.
func isStackGuardCmp(in x86asm.Inst) bool {
	if in.Op != x86asm.CMP {
		return false
	}
	for _, a := range in.Args {
		if m, ok := a.(x86asm.Mem); ok && m.Disp == 16 && m.Index == 0 && m.Base != 0 && m.Base != x86asm.RSP && m.Base != x86asm.RIP {
			return true
		}
	}
	return false
}

// isCondJump reports whether in is a conditional jump.
func isCondJump(in x86asm.Inst) bool {
	switch in.Op {
	case x86asm.JBE, x86asm.JA, x86asm.JB, x86asm.JAE, x86asm.JLE, x86asm.JG, x86asm.JL, x86asm.JGE,
		x86asm.JE, x86asm.JNE:
		return true
	}
	return false
}
