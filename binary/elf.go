package binary

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
)

// Bounds on what Read accepts, so that a hostile file cannot make it
// allocate without limit.
const (
	// MaxSymbolTableBytes is the largest symbol table (and its string
	// table) Read loads: far beyond any real binary (libLLVM's .symtab is
	// about 10 MB).
	MaxSymbolTableBytes = 256 << 20
	// maxSections is the most section headers Read accepts.
	maxSections = 1 << 16
)

// ErrNotELF is wrapped by Read for a file that is not an ELF executable or
// shared library, or is malformed.
var ErrNotELF = errors.New("not an ELF executable or shared library")

// ErrWrongArch is wrapped by Read for an ELF file built for another
// architecture than the host's.
var ErrWrongArch = errors.New("not built for this host's architecture")

// Symbols is what the preflight needs of one binary.
type Symbols struct {
	// Functions are the names of the defined function symbols of .symtab
	// and .dynsym, versions cut off, sorted and without duplicates.
	Functions []string
	// Go reports whether the binary was built by the Go toolchain: any of
	// the sections the Go linker writes (.go.buildinfo, .gopclntab,
	// .gosymtab, .note.go.buildid) or the Go runtime's own functions. It is
	// the one verdict every engine uses: a binary that looks like Go in any
	// way is Go, so nothing ever puts a return probe into it.
	Go bool
	// GoVersion is the version of the Go toolchain that built it (e.g.
	// "go1.26.0") when Go and its build information can be read (see
	// ReadFile); "" otherwise.
	GoVersion string
	// Machine is the ELF machine, e.g. "EM_X86_64".
	Machine string
}

// size is about how many bytes s holds in memory, for the cache's bound.
func (s *Symbols) size() int64 {
	n := int64(64) + int64(len(s.GoVersion))
	for _, f := range s.Functions {
		n += int64(len(f)) + 16
	}
	return n
}

// hostMachine is the ELF machine of the architecture this program runs on.
func hostMachine() (elf.Machine, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	case "386":
		return elf.EM_386, true
	case "arm":
		return elf.EM_ARM, true
	case "riscv64":
		return elf.EM_RISCV, true
	case "ppc64", "ppc64le":
		return elf.EM_PPC64, true
	case "s390x":
		return elf.EM_S390, true
	case "loong64":
		return elf.EM_LOONGARCH, true
	}
	return 0, false
}

// hostClass is the ELF class of a native binary on this host.
func hostClass() elf.Class {
	switch runtime.GOARCH {
	case "386", "arm":
		return elf.ELFCLASS32
	}
	return elf.ELFCLASS64
}

// Read reads the function symbols of the ELF file r of size bytes. It
// returns an error wrapping ErrNotELF for anything that is not a
// well-formed ELF executable or shared library, and ErrWrongArch for one
// built for another architecture. It never reads outside [0, size) and
// loads at most MaxSymbolTableBytes per symbol or string table; it does not
// panic on garbage.
func Read(r io.ReaderAt, size int64) (s *Symbols, err error) {
	defer func() {
		// debug/elf is careful, but this input is hostile: a panic in a
		// parser is a malformed file, not a crash of the endpoint. (The
		// fuzz target calls read directly, so that such a panic is found.)
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%w: malformed (%v)", ErrNotELF, p)
		}
	}()
	return read(r, size)
}

// read is Read without the recover.
func read(r io.ReaderAt, size int64) (*Symbols, error) {
	f, err := NewELF(r, size)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: the file is too short", ErrNotELF)
	}
	if err != nil {
		return nil, err
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("%w: it is an ELF file of type %s", ErrNotELF, f.Type)
	}
	if host, ok := hostMachine(); ok && (f.Machine != host || f.Class != hostClass()) {
		return nil, fmt.Errorf("%w: it is built for %s (%s), this host is %s (%s)",
			ErrWrongArch, f.Machine, f.Class, host, hostClass())
	}
	if len(f.Sections) > maxSections {
		return nil, fmt.Errorf("%w: %d sections", ErrNotELF, len(f.Sections))
	}
	s := &Symbols{Machine: f.Machine.String()}
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOBITS && (sec.Offset > uint64(size) || sec.FileSize > uint64(size)-sec.Offset) {
			return nil, fmt.Errorf("%w: section %q lies outside the file", ErrNotELF, sec.Name)
		}
		switch sec.Name {
		case ".go.buildinfo", ".gopclntab", ".gosymtab", ".note.go.buildid":
			s.Go = true
		}
	}
	syms, err := functionSymbols(f)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(syms))
	for _, sym := range syms {
		names = append(names, sym.Name)
		switch sym.Name {
		case "runtime.morestack", "runtime.morestack.abi0", "runtime.morestack_noctxt", "runtime.goexit", "runtime.goexit.abi0", "runtime.rt0_go":
			s.Go = true
		}
	}
	slices.Sort(names)
	s.Functions = names // names are distinct: functionSymbols keeps one per name
	return s, nil
}

// FunctionSymbol is a function defined in an ELF file: where its code is.
type FunctionSymbol struct {
	// Name is the symbol's name, a version suffix cut off: what a uprobe
	// attaches to.
	Name string
	// Value is the symbol's address and Size its size in bytes.
	Value, Size uint64
	// Section is the index of the section holding the code.
	Section elf.SectionIndex
}

// FunctionSymbols returns the defined function symbols of the ELF file f
// that the preflight sees (see Read): those of .symtab, then those of
// .dynsym, one per name (the first), versions cut off. The symbol and
// string tables are bounded as Read bounds them, so a hostile file cannot
// make it allocate without limit. Errors wrap ErrNotELF; a panic of
// debug/elf on a malformed file is returned as one.
func FunctionSymbols(f *elf.File) (syms []FunctionSymbol, err error) {
	defer func() {
		if p := recover(); p != nil {
			syms, err = nil, fmt.Errorf("%w: malformed (%v)", ErrNotELF, p)
		}
	}()
	return functionSymbols(f)
}

// functionSymbols is FunctionSymbols without the recover.
func functionSymbols(f *elf.File) ([]FunctionSymbol, error) {
	out := make([]FunctionSymbol, 0, 1024)
	seen := make(map[string]bool, 1024)
	var budget int64 // name bytes still allowed (readFunctionSymbols)
	for _, typ := range [...]elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
		sec := f.SectionByType(typ)
		if sec == nil {
			continue
		}
		if err := checkTable(f, sec); err != nil {
			return nil, err
		}
		err := readFunctionSymbols(f, sec, &budget, func(name []byte, value, size uint64, section elf.SectionIndex) bool {
			if seen[string(name)] {
				return false
			}
			n := string(name)
			seen[n] = true
			out = append(out, FunctionSymbol{Name: n, Value: value, Size: size, Section: section})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkTable refuses a symbol table (or its string table) that is too big,
// or compressed (decompressing it has no bound).
func checkTable(f *elf.File, sec *elf.Section) error {
	tables := []*elf.Section{sec}
	if int(sec.Link) < len(f.Sections) {
		tables = append(tables, f.Sections[sec.Link])
	}
	for _, t := range tables {
		if t.Size > MaxSymbolTableBytes {
			return fmt.Errorf("%w: section %q is %d bytes, more than %d", ErrNotELF, t.Name, t.Size, MaxSymbolTableBytes)
		}
		if t.Flags&elf.SHF_COMPRESSED != 0 {
			return fmt.Errorf("%w: section %q is compressed", ErrNotELF, t.Name)
		}
	}
	return nil
}

// Inspect opens the file at path (see Open) and reads its symbols (see
// ReadFile). It also returns the file's identity, taken from the opened
// file, so that it is the identity of what was read. It does not use a
// cache; Checker does.
func Inspect(path string) (*Symbols, Identity, error) {
	f, err := Open(path)
	if err != nil {
		return nil, Identity{}, err
	}
	defer f.Close()
	s, err := ReadFile(f)
	if err != nil {
		return nil, Identity{}, err
	}
	return s, f.Identity(), nil
}
