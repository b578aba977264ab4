package native

import (
	"debug/buildinfo"
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

// maxFunctionBytes bounds how much of one Go function is read and
// disassembled to find its RET instructions.
const maxFunctionBytes = 16 << 20

// function is one probed function of the binary.
type function struct {
	// Name is the symbol name, as in the probe names.
	Name string
	// Entry is where the entry probe sits, relative to the symbol: 0 for
	// C, after the stack-check prologue for Go.
	Entry uint64
	// Returns are the offsets of the RET instructions relative to the
	// symbol (Go only: a C function's return is a uretprobe).
	Returns []uint64
}

// binaryInfo is what the engine learnt about the traced binary.
type binaryInfo struct {
	// Go reports a binary built by the Go toolchain (debug/buildinfo).
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
	return b.Go && version.Compare(version.Lang(b.GoVersion), "go1.17") >= 0
}

// inspect reads the binary at path and resolves the patterns (names, or
// "*" wildcards) to functions; maxProbes bounds the number of uprobes
// (entries and returns) the functions need. The symbols and wildcards are
// those of the preflight (binary.FunctionSymbols, binary.Match).
func inspect(path string, patterns []string, maxProbes int) (*binaryInfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading ELF file %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("reading %s: %w: %s binaries (the native engine traces x86-64 ones)", path, ErrNotSupported, f.Machine)
	}
	info := &binaryInfo{}
	if bi, err := buildinfo.ReadFile(path); err == nil {
		info.Go, info.GoVersion = true, bi.GoVersion
	}
	list, err := binary.FunctionSymbols(f)
	if err != nil {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	syms := make(map[string]binary.FunctionSymbol, len(list))
	names := make([]string, 0, len(list))
	for _, s := range list {
		syms[s.Name] = s
		names = append(names, s.Name)
	}
	sort.Strings(names)

	seen := map[string]bool{}
	probes := 0
	for _, p := range patterns {
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
			fn := function{Name: n}
			if info.Go {
				code, err := symbolBytes(f, syms[n])
				if err != nil {
					return nil, fmt.Errorf("reading the code of %s in %s: %w", n, path, err)
				}
				fn.Entry, fn.Returns, err = goProbeOffsets(code)
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
			if probes > maxProbes {
				return nil, fmt.Errorf("resolving functions in %s: more than %d probes are needed (entries and returns); name fewer functions", path, maxProbes)
			}
			info.Functions = append(info.Functions, fn)
		}
	}
	return info, nil
}

// symbolBytes returns the code of the function symbol s.
func symbolBytes(f *elf.File, s binary.FunctionSymbol) ([]byte, error) {
	if int(s.Section) >= len(f.Sections) || s.Section >= elf.SHN_LORESERVE {
		return nil, fmt.Errorf("symbol in section %d, not in a code section", s.Section)
	}
	sec := f.Sections[s.Section]
	if sec.Type == elf.SHT_NOBITS || s.Value < sec.Addr || s.Value-sec.Addr > sec.Size || s.Size > sec.Size-(s.Value-sec.Addr) {
		return nil, fmt.Errorf("symbol outside its section %s", sec.Name)
	}
	if s.Size == 0 || s.Size > maxFunctionBytes {
		return nil, fmt.Errorf("symbol size %d out of range 1..%d", s.Size, maxFunctionBytes)
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
func goProbeOffsets(code []byte) (entry uint64, rets []uint64, err error) {
	var insts []x86asm.Inst
	var offs []uint64
	for off := 0; off < len(code); {
		in, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			// Padding after the last instruction (INT3 decodes; zero
			// bytes after a final RET or JMP may not).
			if allPadding(code[off:]) {
				break
			}
			return 0, nil, fmt.Errorf("decoding the instruction at offset %d: %w", off, err)
		}
		insts = append(insts, in)
		offs = append(offs, uint64(off))
		if in.Op == x86asm.RET {
			rets = append(rets, uint64(off))
		}
		off += in.Len
	}
	for i := 0; i < len(insts)-1 && i < prologueWindow; i++ {
		if isStackGuardCmp(insts[i]) && isCondJump(insts[i+1]) {
			entry = offs[i+1] + uint64(insts[i+1].Len)
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
