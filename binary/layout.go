package binary

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// Bounds of what debug/elf is allowed to allocate for a file: it copies
// every section's name and every symbol's name on its own, so a small
// hostile file whose many names all point at one long string would make
// it allocate gigabytes. The headers are checked (checkLayout) before
// debug/elf parses them, and the symbol tables are read here
// (readFunctionSymbols), never through debug/elf's Symbols.
const (
	// maxSectionNameTable is the largest section name table (.shstrtab)
	// accepted; a real one is a few hundred bytes.
	maxSectionNameTable = 1 << 20
	// maxSectionNameBytes bounds the section names together, as debug/elf
	// copies them.
	maxSectionNameBytes = 4 << 20
	// maxSymbolName is the longest symbol name read (C++ templates reach a
	// few KiB); a longer one is refused.
	maxSymbolName = 64 << 10
	// maxFunctionNameBytes bounds the function names kept from the symbol
	// tables together, beyond the size of their string tables (a string
	// table's strings may share tails, so a real binary may go a little
	// beyond it).
	maxFunctionNameBytes = 16 << 20
)

// NewELF parses the ELF file r of size bytes with debug/elf, after checking
// that its section headers cannot make debug/elf allocate without bound
// (see the bounds above). Read the symbols with FunctionSymbols. Errors
// wrap ErrNotELF.
func NewELF(r io.ReaderAt, size int64) (*elf.File, error) {
	if err := checkLayout(r, size); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotELF, err)
	}
	return f, nil
}

// checkLayout reads the ELF header and the section headers of r itself
// and refuses what would make debug/elf allocate without bound: more than
// maxSections sections (or the extended numbering that holds more), a
// section name table over maxSectionNameTable, or names over
// maxSectionNameBytes together.
func checkLayout(r io.ReaderAt, size int64) error {
	var ident [elf.EI_NIDENT]byte
	if _, err := r.ReadAt(ident[:], 0); err != nil {
		return fmt.Errorf("%w: the file is too short", ErrNotELF)
	}
	if !bytes.Equal(ident[:4], []byte(elf.ELFMAG)) {
		return fmt.Errorf("%w: no ELF magic number", ErrNotELF)
	}
	var order binary.ByteOrder
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return fmt.Errorf("%w: unknown byte order", ErrNotELF)
	}
	sr := io.NewSectionReader(r, 0, size)
	var shoff, entsize int64
	var shnum, shstrndx int
	switch elf.Class(ident[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		var h elf.Header64
		if err := binary.Read(sr, order, &h); err != nil {
			return fmt.Errorf("%w: the file is too short", ErrNotELF)
		}
		shoff, entsize, shnum, shstrndx = int64(h.Shoff), int64(h.Shentsize), int(h.Shnum), int(h.Shstrndx)
	case elf.ELFCLASS32:
		var h elf.Header32
		if err := binary.Read(sr, order, &h); err != nil {
			return fmt.Errorf("%w: the file is too short", ErrNotELF)
		}
		shoff, entsize, shnum, shstrndx = int64(h.Shoff), int64(h.Shentsize), int(h.Shnum), int(h.Shstrndx)
	default:
		return fmt.Errorf("%w: unknown ELF class", ErrNotELF)
	}
	switch {
	case shnum == 0 && shoff != 0, shnum >= int(elf.SHN_LORESERVE), shstrndx == int(elf.SHN_XINDEX):
		return fmt.Errorf("%w: extended section numbering (more than %d sections)", ErrNotELF, maxSections)
	case shnum == 0:
		return nil // no section headers: nothing to name
	case shnum > maxSections:
		return fmt.Errorf("%w: %d sections", ErrNotELF, shnum)
	case shoff < 0 || entsize <= 0 || shoff > size || int64(shnum)*entsize > size-shoff:
		return fmt.Errorf("%w: the section headers lie outside the file", ErrNotELF)
	case shstrndx >= shnum:
		return nil // debug/elf names nothing then
	}
	type header struct{ name, off, size uint64 }
	headers := make([]header, shnum)
	for i := range headers {
		s := io.NewSectionReader(r, shoff+int64(i)*entsize, entsize)
		if elf.Class(ident[elf.EI_CLASS]) == elf.ELFCLASS64 {
			var sh elf.Section64
			if err := binary.Read(s, order, &sh); err != nil {
				return fmt.Errorf("%w: reading section header %d: %w", ErrNotELF, i, err)
			}
			headers[i] = header{uint64(sh.Name), sh.Off, sh.Size}
			if elf.SectionType(sh.Type) == elf.SHT_NOBITS {
				headers[i].size = 0
			}
		} else {
			var sh elf.Section32
			if err := binary.Read(s, order, &sh); err != nil {
				return fmt.Errorf("%w: reading section header %d: %w", ErrNotELF, i, err)
			}
			headers[i] = header{uint64(sh.Name), uint64(sh.Off), uint64(sh.Size)}
			if elf.SectionType(sh.Type) == elf.SHT_NOBITS {
				headers[i].size = 0
			}
		}
	}
	names := headers[shstrndx]
	if names.size > maxSectionNameTable {
		return fmt.Errorf("%w: the section name table is %d bytes, more than %d", ErrNotELF, names.size, maxSectionNameTable)
	}
	if names.off > uint64(size) || names.size > uint64(size)-names.off {
		return fmt.Errorf("%w: the section name table lies outside the file", ErrNotELF)
	}
	table := make([]byte, names.size)
	if _, err := r.ReadAt(table, int64(names.off)); err != nil {
		return fmt.Errorf("%w: reading the section name table: %w", ErrNotELF, err)
	}
	total := 0
	for _, h := range headers {
		if h.name >= uint64(len(table)) {
			continue // debug/elf refuses it
		}
		n := bytes.IndexByte(table[h.name:], 0)
		if n < 0 {
			n = len(table) - int(h.name)
		}
		if total += n; total > maxSectionNameBytes {
			return fmt.Errorf("%w: the section names are more than %d bytes together", ErrNotELF, maxSectionNameBytes)
		}
	}
	return nil
}

// readFunctionSymbols reads the symbol table sec of f (SHT_SYMTAB or
// SHT_DYNSYM, checked by checkTable) itself, without debug/elf's Symbols
// (which copies every name, and for .dynsym parses the version sections
// without bound): it calls keep with each defined function's name (a
// version suffix cut off), value, size and section, the name valid only
// during the call. Names are bounded to maxSymbolName each and, kept,
// to the string table's size plus maxFunctionNameBytes together (budget,
// shared by the tables of one file).
func readFunctionSymbols(f *elf.File, sec *elf.Section, budget *int64, keep func(name []byte, value, size uint64, section elf.SectionIndex) bool) error {
	if int(sec.Link) >= len(f.Sections) {
		return fmt.Errorf("%w: %s links to no string table", ErrNotELF, sec.Name)
	}
	data, err := sec.Data()
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrNotELF, sec.Name, err)
	}
	strs, err := f.Sections[sec.Link].Data()
	if err != nil {
		return fmt.Errorf("%w: reading the string table of %s: %w", ErrNotELF, sec.Name, err)
	}
	*budget += int64(len(strs))
	entsize := elf.Sym64Size
	if f.Class == elf.ELFCLASS32 {
		entsize = elf.Sym32Size
	}
	order := f.ByteOrder
	// Entry 0 is the null symbol.
	for off := entsize; off+entsize <= len(data); off += entsize {
		e := data[off : off+entsize]
		var nameOff uint32
		var info byte
		var shndx uint16
		var value, size uint64
		if f.Class == elf.ELFCLASS32 {
			nameOff, value, size = order.Uint32(e[0:4]), uint64(order.Uint32(e[4:8])), uint64(order.Uint32(e[8:12]))
			info, shndx = e[12], order.Uint16(e[14:16])
		} else {
			nameOff, info, shndx = order.Uint32(e[0:4]), e[4], order.Uint16(e[6:8])
			value, size = order.Uint64(e[8:16]), order.Uint64(e[16:24])
		}
		switch elf.SymType(info & 0xf) {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		default:
			continue
		}
		section := elf.SectionIndex(shndx)
		if section == elf.SHN_UNDEF || section >= elf.SHN_LORESERVE && section != elf.SHN_XINDEX || value == 0 {
			continue
		}
		if int(nameOff) >= len(strs) {
			return fmt.Errorf("%w: %s: a symbol's name lies outside its string table", ErrNotELF, sec.Name)
		}
		name := strs[nameOff:]
		n := bytes.IndexByte(name, 0)
		if n < 0 || n > maxSymbolName {
			return fmt.Errorf("%w: %s: a symbol's name is longer than %d bytes", ErrNotELF, sec.Name, maxSymbolName)
		}
		name = name[:n]
		if i := bytes.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		if len(name) == 0 {
			continue
		}
		if keep(name, value, size, section) {
			if *budget -= int64(len(name)); *budget < -maxFunctionNameBytes {
				return fmt.Errorf("%w: the function names are more than their string tables and %d bytes together", ErrNotELF, maxFunctionNameBytes)
			}
		}
	}
	return nil
}
