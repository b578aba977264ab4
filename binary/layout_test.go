package binary

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// hostileELF builds a small 64-bit little-endian ELF executable for machine: sections section
// headers, the extra ones all named by a run of nameLen bytes without a
// NUL in the name table, and a symbol table of symbols function symbols
// whose names start at offsets 0, 1, 2, ... of one string of symName
// bytes. debug/elf would copy every one of those names.
func hostileELF(machine elf.Machine, sections, nameLen, symbols, symName int) []byte {
	const hdr, shent = 64, 64
	shstr := append([]byte("\x00.shstrtab\x00.strtab\x00.symtab\x00.text\x00"), bytes.Repeat([]byte("A"), nameLen)...)
	strtab := append(append([]byte{0}, bytes.Repeat([]byte("f"), symName)...), 0)
	symtab := make([]byte, elf.Sym64Size*(symbols+1))
	for i := 1; i <= symbols; i++ {
		e := symtab[i*elf.Sym64Size:]
		binary.LittleEndian.PutUint32(e[0:], uint32(1+(i-1)%symName))
		e[4] = byte(elf.STB_GLOBAL)<<4 | byte(elf.STT_FUNC)
		binary.LittleEndian.PutUint16(e[6:], 4) // .text
		binary.LittleEndian.PutUint64(e[8:], 0x401000+uint64(i))
		binary.LittleEndian.PutUint64(e[16:], 1)
	}
	var data bytes.Buffer
	off := func() uint64 { return hdr + uint64(data.Len()) }
	shstrOff := off()
	data.Write(shstr)
	strOff := off()
	data.Write(strtab)
	symOff := off()
	data.Write(symtab)
	textOff := off()
	data.WriteByte(0xc3)
	shoff := off()
	secs := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstr))},
		{Name: 11, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(strtab))},
		{Name: 19, Type: uint32(elf.SHT_SYMTAB), Off: symOff, Size: uint64(len(symtab)), Link: 2, Entsize: elf.Sym64Size},
		{Name: 27, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Addr: 0x401000, Off: textOff, Size: 1},
	}
	for len(secs) < sections {
		secs = append(secs, elf.Section64{Name: 33, Type: uint32(elf.SHT_PROGBITS), Off: textOff, Size: 1})
	}
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Entry: 0x401000,
		Shoff: shoff, Ehsize: hdr, Shentsize: shent, Shnum: uint16(len(secs)), Shstrndx: 1}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, h)
	out.Write(data.Bytes())
	for _, s := range secs {
		binary.Write(&out, binary.LittleEndian, s)
	}
	return out.Bytes()
}

// TestHostileNames: files of a few MiB whose names would make debug/elf
// allocate gigabytes are refused within a small allocation; a sane one is
// read.
func TestHostileNames(t *testing.T) {
	machine, ok := hostMachine()
	if !ok || hostClass() != elf.ELFCLASS64 {
		t.Fatalf("the crafted files are 64-bit ELF executables; this host is %s", runtime.GOARCH)
	}
	tests := []struct {
		name                                string
		sections, nameLen, symbols, symName int
		want                                string // error text; "" reads
		functions                           int
	}{
		{"a sane file", 5, 8, 3, 16, "", 3},
		// 2000 sections named by one 1 MiB run: 2 GiB of names.
		{"section names", 2000, 1<<20 - 64, 1, 16, "the section names are more than", 0},
		{"section name table too big", 5, 2 << 20, 1, 16, "the section name table is", 0},
		// 60,000 symbols named by the suffixes of one 60 KiB name: 1.7 GiB.
		{"symbol names", 5, 8, 60000, 60 << 10, "the function names are more than", 0},
		{"one symbol name too long", 5, 8, 1, 70 << 10, "longer than 65536 bytes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hostileELF(machine, tt.sections, tt.nameLen, tt.symbols, tt.symName)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := Read(bytes.NewReader(b), int64(len(b)))
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*maxFunctionNameBytes+16<<20+4*uint64(len(b)) {
				t.Errorf("reading a %d KiB file allocated %d MiB", len(b)>>10, alloc>>20)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Read: %v", err)
			case tt.want == "" && len(s.Functions) != tt.functions:
				t.Errorf("%d functions, want %d", len(s.Functions), tt.functions)
			case tt.want != "" && (err == nil || !errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Read: %v, want an ErrNotELF saying %q", err, tt.want)
			}
		})
	}
}
