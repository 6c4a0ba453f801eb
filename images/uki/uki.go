// Package uki assembles unified kernel images: systemd's EFI stub with the
// kernel, its initrds, the kernel command line and an os-release added as
// PE sections, so that one Authenticode signature covers all of them (the
// own-keys Secure Boot chain signs the result; see internal/secureboot).
//
// It does in Go what systemd's ukify and objcopy --add-section do: the new
// sections go after the stub's last one, in file and in memory, and the
// PE headers are updated to match. systemd-stub finds them by name.
package uki

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Section is one section to add: Name is at most 8 bytes (".linux").
type Section struct {
	Name string
	Data []byte
}

// ErrNotPE means the stub is not a PE32+ image the assembler can extend.
var ErrNotPE = errors.New("not a PE32+ EFI image")

// The PE offsets the assembler reads and writes.
const (
	peSigSize      = 4
	coffSize       = 20
	sectionHdrSize = 40
	// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
	dataSection = 0x00000040 | 0x40000000
	// Sections are placed at page boundaries in memory, whatever the
	// stub's own SectionAlignment (a multiple of it), as ukify does.
	pageSize = 4096
)

// Sections are a UKI's sections in the order ukify writes them: os-release
// and command line first, the initrds (concatenated: early microcode
// first) and the kernel last.
func Sections(osRelease, cmdline string, kernel []byte, initrds ...[]byte) []Section {
	var initrd []byte
	for _, i := range initrds {
		initrd = append(initrd, i...)
	}
	s := []Section{{".osrel", []byte(osRelease)}, {".cmdline", []byte(cmdline)}}
	if len(initrd) > 0 {
		s = append(s, Section{".initrd", initrd})
	}
	return append(s, Section{".linux", kernel})
}

// Assemble returns stub with sections added. The stub must be an unsigned
// PE32+ image with room in its headers for the new section headers (as
// systemd's stub has).
func Assemble(stub []byte, sections []Section) ([]byte, error) {
	h, err := parse(stub)
	if err != nil {
		return nil, err
	}
	if h.certSize != 0 {
		return nil, fmt.Errorf("%w: the stub is already signed; use the unsigned one (linuxx64.efi.stub)", ErrNotPE)
	}
	room := int(h.sizeOfHeaders) - (h.sectionTable + h.numSections*sectionHdrSize)
	if need := len(sections) * sectionHdrSize; need > room {
		return nil, fmt.Errorf("%w: no room in the stub's headers for %d more sections (%d bytes free, %d needed)", ErrNotPE, len(sections), room, need)
	}
	// The file ends with the last section's raw data; anything after it
	// (a symbol table, debug data) is not loaded and is dropped.
	out := make([]byte, 0, len(stub)+total(sections)+len(sections)*int(h.fileAlign))
	out = append(out, stub[:h.rawEnd]...)
	va := alignUp(h.virtEnd, pageSize)
	initialized := binary.LittleEndian.Uint32(out[h.optional+8:])
	for i, s := range sections {
		if len(s.Name) == 0 || len(s.Name) > 8 {
			return nil, fmt.Errorf("section name %q: 1 to 8 bytes", s.Name)
		}
		if len(s.Data) == 0 {
			return nil, fmt.Errorf("section %s is empty", s.Name)
		}
		for uint32(len(out))%h.fileAlign != 0 {
			out = append(out, 0)
		}
		raw := alignUp(uint32(len(s.Data)), h.fileAlign)
		if uint64(len(out))+uint64(raw) > 1<<32-1 || uint64(va)+uint64(len(s.Data)) > 1<<32-1 {
			return nil, fmt.Errorf("section %s: the image would pass 4 GiB", s.Name)
		}
		var hdr [sectionHdrSize]byte
		copy(hdr[:8], s.Name)
		binary.LittleEndian.PutUint32(hdr[8:], uint32(len(s.Data))) // VirtualSize
		binary.LittleEndian.PutUint32(hdr[12:], va)                 // VirtualAddress
		binary.LittleEndian.PutUint32(hdr[16:], raw)                // SizeOfRawData
		binary.LittleEndian.PutUint32(hdr[20:], uint32(len(out)))   // PointerToRawData
		binary.LittleEndian.PutUint32(hdr[36:], dataSection)
		copy(out[h.sectionTable+(h.numSections+i)*sectionHdrSize:], hdr[:])
		out = append(out, s.Data...)
		out = append(out, make([]byte, int(raw)-len(s.Data))...)
		initialized += raw
		va = alignUp(va+uint32(len(s.Data)), pageSize)
	}
	binary.LittleEndian.PutUint16(out[h.coff+2:], uint16(h.numSections+len(sections)))
	// The COFF symbol table, when there is one, was after the sections.
	binary.LittleEndian.PutUint32(out[h.coff+8:], 0)
	binary.LittleEndian.PutUint32(out[h.coff+12:], 0)
	binary.LittleEndian.PutUint32(out[h.optional+8:], initialized)
	binary.LittleEndian.PutUint32(out[h.optional+56:], alignUp(va, h.sectAlign)) // SizeOfImage
	binary.LittleEndian.PutUint32(out[h.optional+64:], 0)
	binary.LittleEndian.PutUint32(out[h.optional+64:], Checksum(out))
	return out, nil
}

// SectionData returns the data of the named section of a PE image (its
// VirtualSize bytes): what systemd-stub reads.
func SectionData(img []byte, name string) ([]byte, error) {
	h, err := parse(img)
	if err != nil {
		return nil, err
	}
	for i := 0; i < h.numSections; i++ {
		s := img[h.sectionTable+i*sectionHdrSize:]
		if string(bytes.TrimRight(s[:8], "\x00")) != name {
			continue
		}
		vsize, raw, ptr := binary.LittleEndian.Uint32(s[8:]), binary.LittleEndian.Uint32(s[16:]), binary.LittleEndian.Uint32(s[20:])
		n := min(vsize, raw)
		if uint64(ptr)+uint64(n) > uint64(len(img)) {
			return nil, fmt.Errorf("%w: section %s runs past the end of the file", ErrNotPE, name)
		}
		return img[ptr : ptr+n], nil
	}
	return nil, fmt.Errorf("no section %s", name)
}

// Checksum is the PE image checksum (the optional header's CheckSum field
// counts as zero): 16-bit one's-complement sum of the file plus its length.
func Checksum(img []byte) uint32 {
	h, err := parse(img)
	skip := -1
	if err == nil {
		skip = h.optional + 64
	}
	var sum uint64
	for i := 0; i+1 < len(img); i += 2 {
		if i == skip || i == skip+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(img[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(img)%2 == 1 {
		sum += uint64(img[len(img)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(img))
}

type headers struct {
	coff, optional, sectionTable int
	numSections                  int
	sectAlign, fileAlign         uint32
	sizeOfHeaders                uint32
	certSize                     uint32
	// rawEnd is where the last section's raw data ends in the file;
	// virtEnd where the last section ends in memory.
	rawEnd  int
	virtEnd uint32
}

func parse(b []byte) (*headers, error) {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return nil, fmt.Errorf("%w: no MZ header", ErrNotPE)
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe < 0x40 || pe > len(b)-peSigSize-coffSize || !bytes.Equal(b[pe:pe+4], []byte("PE\x00\x00")) {
		return nil, fmt.Errorf("%w: no PE signature", ErrNotPE)
	}
	h := &headers{coff: pe + peSigSize}
	h.numSections = int(binary.LittleEndian.Uint16(b[h.coff+2:]))
	optSize := int(binary.LittleEndian.Uint16(b[h.coff+16:]))
	h.optional = h.coff + coffSize
	h.sectionTable = h.optional + optSize
	if optSize < 112 || h.sectionTable+h.numSections*sectionHdrSize > len(b) {
		return nil, fmt.Errorf("%w: truncated headers", ErrNotPE)
	}
	if binary.LittleEndian.Uint16(b[h.optional:]) != 0x20b {
		return nil, fmt.Errorf("%w: not PE32+ (64-bit)", ErrNotPE)
	}
	h.sectAlign = binary.LittleEndian.Uint32(b[h.optional+32:])
	h.fileAlign = binary.LittleEndian.Uint32(b[h.optional+36:])
	h.sizeOfHeaders = binary.LittleEndian.Uint32(b[h.optional+60:])
	if h.fileAlign == 0 || h.fileAlign&(h.fileAlign-1) != 0 || h.sectAlign == 0 || h.sectAlign&(h.sectAlign-1) != 0 ||
		h.sizeOfHeaders > uint32(len(b)) {
		return nil, fmt.Errorf("%w: bad alignment or header size", ErrNotPE)
	}
	if n := binary.LittleEndian.Uint32(b[h.optional+108:]); n > 4 && optSize >= 112+5*8 {
		h.certSize = binary.LittleEndian.Uint32(b[h.optional+112+4*8+4:])
	}
	for i := 0; i < h.numSections; i++ {
		s := b[h.sectionTable+i*sectionHdrSize:]
		vsize, va := binary.LittleEndian.Uint32(s[8:]), binary.LittleEndian.Uint32(s[12:])
		raw, ptr := binary.LittleEndian.Uint32(s[16:]), binary.LittleEndian.Uint32(s[20:])
		if uint64(ptr)+uint64(raw) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: section %d runs past the end of the file", ErrNotPE, i)
		}
		if end := int(ptr + raw); raw > 0 && end > h.rawEnd {
			h.rawEnd = end
		}
		if end := va + max(vsize, raw); end > h.virtEnd {
			h.virtEnd = end
		}
	}
	if h.rawEnd < int(h.sizeOfHeaders) {
		h.rawEnd = int(h.sizeOfHeaders)
	}
	return h, nil
}

func alignUp(n, a uint32) uint32 { return (n + a - 1) &^ (a - 1) }

func total(ss []Section) int {
	n := 0
	for _, s := range ss {
		n += len(s.Data)
	}
	return n
}
