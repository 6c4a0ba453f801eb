package gpt

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
)

// LinuxFilesystem is the partition type GUID of a Linux filesystem.
const LinuxFilesystem = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

// align is where New starts and ends partitions: 1 MiB, in sectors.
const align = 2048

// New is a fresh table for an empty disk of sectors sectors: a protective
// MBR, random disk and partition GUIDs, and one partition of type typeGUID
// named name from the first MiB to the last whole MiB before the backup
// table. It writes nothing; Write does.
func New(sectors int64, name, typeGUID string) (*Table, error) {
	u := utf16.Encode([]rune(name))
	if len(u) == 0 || len(u) > 36 {
		return nil, fmt.Errorf("partition name %q: 1 to 36 UTF-16 units", name)
	}
	typ, err := parseGUID(typeGUID)
	if err != nil {
		return nil, err
	}
	firstUsable := uint64(2 + EntrySectors)
	lastUsable := uint64(sectors) - EntrySectors - 2
	start := uint64(align)
	end := (lastUsable+1)/align*align - 1
	if sectors <= 0 || end <= start || end > lastUsable {
		return nil, fmt.Errorf("a disk of %d sectors has no room for a partition of a MiB or more", sectors)
	}
	t := &Table{MBR: make([]byte, SectorSize), Header: make([]byte, SectorSize), Entries: make([]byte, EntrySectors*SectorSize)}
	// The protective MBR: one partition of type 0xEE over the disk.
	p := t.MBR[446:]
	p[1], p[2], p[3] = 0x00, 0x02, 0x00 // CHS of LBA 1
	p[4] = 0xEE
	p[5], p[6], p[7] = 0xFF, 0xFF, 0xFF
	le.PutUint32(p[8:], 1)
	le.PutUint32(p[12:], uint32(min(uint64(sectors-1), 0xFFFFFFFF)))
	t.MBR[510], t.MBR[511] = 0x55, 0xAA

	h := t.Header
	copy(h, "EFI PART")
	le.PutUint32(h[8:], 0x00010000) // revision 1.0
	le.PutUint32(h[12:], 92)        // header size
	le.PutUint64(h[24:], 1)
	le.PutUint64(h[32:], uint64(sectors-1))
	le.PutUint64(h[40:], firstUsable)
	le.PutUint64(h[48:], lastUsable)
	le.PutUint64(h[72:], 2)
	le.PutUint32(h[80:], uint32(len(t.Entries)/128))
	le.PutUint32(h[84:], 128)

	e := t.Entries[:128]
	copy(e[0:16], typ)
	le.PutUint64(e[32:], start)
	le.PutUint64(e[40:], end)
	for i, c := range u {
		le.PutUint16(e[56+2*i:], c)
	}
	// Random disk and partition GUIDs (the partition's type is set, so
	// NewGUIDs sees it).
	if err := t.NewGUIDs(); err != nil {
		return nil, err
	}
	return t, nil
}

// parseGUID is a GUID's 16 bytes as GPT stores them (the first three
// fields little-endian).
func parseGUID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return nil, fmt.Errorf("GUID %q: want 8-4-4-4-12 hex digits", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return nil, fmt.Errorf("GUID %q: %w", s, err)
	}
	out := make([]byte, 16)
	for i := 0; i < 4; i++ {
		out[i] = raw[3-i]
	}
	out[4], out[5] = raw[5], raw[4]
	out[6], out[7] = raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out, nil
}
