// Package gpt reads and rewrites a GUID partition table in place, with no
// dependencies: flash moves the backup table to the end of a larger
// device, and hostd grows the data partition into free space. (go-diskfs
// writes the tables at build time; this package edits them afterwards.)
package gpt

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// SectorSize is the logical sector size thinhost images use.
const SectorSize = 512

// EntrySectors is the partition array's size: 128 entries of 128 bytes.
const EntrySectors = 32

// ErrNoGPT means LBA 1 holds no GPT header.
var ErrNoGPT = errors.New("no GPT")

var le = binary.LittleEndian

// Table is a disk's protective MBR, primary header and partition array.
type Table struct {
	MBR, Header, Entries []byte
	// FromBackup says the primary table was damaged and this one was read
	// from the backup at the disk's end; Write repairs the primary.
	FromBackup bool
}

// Read reads and checks the partition table of a disk of sectors sectors:
// the primary one, or, when that is damaged (a write torn by a crash, a
// tool that overwrote the disk's start), the backup. A table that fits
// neither the disk nor the specification is refused, never trusted.
func Read(r io.ReaderAt, sectors int64) (*Table, error) {
	t := &Table{MBR: make([]byte, SectorSize)}
	if _, err := r.ReadAt(t.MBR, 0); err != nil {
		return nil, fmt.Errorf("read MBR: %w", err)
	}
	h, entries, perr := readHeader(r, 1, sectors)
	if perr == nil {
		t.Header, t.Entries = h, entries
		return t, nil
	}
	// The backup header is where the primary says, or at the disk's end.
	alt := uint64(sectors - 1)
	if h != nil && le.Uint64(h[32:]) < uint64(sectors) && le.Uint64(h[32:]) > 1 {
		alt = le.Uint64(h[32:])
	}
	bh, bentries, berr := readHeader(r, alt, sectors)
	if berr != nil && alt != uint64(sectors-1) {
		bh, bentries, berr = readHeader(r, uint64(sectors-1), sectors)
	}
	if berr != nil {
		if errors.Is(perr, ErrNoGPT) && errors.Is(berr, ErrNoGPT) {
			return nil, perr
		}
		return nil, fmt.Errorf("primary GPT: %w; backup GPT: %v", perr, berr)
	}
	// Make the backup the primary's image: its own LBA 1, the backup
	// where it was, the entries after the header.
	me := le.Uint64(bh[24:])
	le.PutUint64(bh[24:], 1)
	le.PutUint64(bh[32:], me)
	le.PutUint64(bh[72:], 2)
	setHeaderCRC(bh)
	if le.Uint64(bh[40:]) < 2+uint64(len(bentries)/SectorSize) {
		return nil, fmt.Errorf("primary GPT: %w; the backup's first usable sector %d leaves no room for the primary entries", perr, le.Uint64(bh[40:]))
	}
	t.Header, t.Entries, t.FromBackup = bh, bentries, true
	return t, nil
}

// readHeader reads and checks the GPT header at lba and its entries. On
// a damaged header it still returns the header's bytes when it has the
// signature (its AlternateLBA points at the backup).
func readHeader(r io.ReaderAt, lba uint64, sectors int64) (h, entries []byte, err error) {
	h = make([]byte, SectorSize)
	if _, err := r.ReadAt(h, int64(lba)*SectorSize); err != nil {
		return nil, nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	if string(h[:8]) != "EFI PART" {
		return nil, nil, fmt.Errorf("%w: no \"EFI PART\" at LBA %d", ErrNoGPT, lba)
	}
	hsize := le.Uint32(h[12:])
	if hsize < 92 || hsize > SectorSize {
		return h, nil, fmt.Errorf("GPT header at LBA %d has size %d", lba, hsize)
	}
	check := append([]byte(nil), h[:hsize]...)
	le.PutUint32(check[16:], 0)
	if crc32.ChecksumIEEE(check) != le.Uint32(h[16:]) {
		return h, nil, fmt.Errorf("GPT header at LBA %d: checksum is wrong, the table is damaged", lba)
	}
	last := uint64(sectors - 1)
	my, first, lastUsable, entryLBA := le.Uint64(h[24:]), le.Uint64(h[40:]), le.Uint64(h[48:]), le.Uint64(h[72:])
	n, es := uint64(le.Uint32(h[80:])), uint64(le.Uint32(h[84:]))
	esectors := (n*es + SectorSize - 1) / SectorSize
	switch {
	case my != lba:
		return h, nil, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, my)
	case es != 128 || n == 0 || n*es > EntrySectors*SectorSize:
		return h, nil, fmt.Errorf("GPT header at LBA %d has %d entries of %d bytes; thinhost reads at most %d 128-byte entries", lba, n, es, EntrySectors*SectorSize/128)
	case first > lastUsable || lastUsable > last:
		return h, nil, fmt.Errorf("GPT header at LBA %d: usable sectors %d-%d do not fit a disk of %d sectors", lba, first, lastUsable, sectors)
	case entryLBA < 2 || entryLBA+esectors > uint64(sectors) || entryLBA <= lba && lba < entryLBA+esectors ||
		!(entryLBA+esectors <= first || entryLBA > lastUsable):
		return h, nil, fmt.Errorf("GPT header at LBA %d: its entries at LBA %d overlap the header or the usable sectors, or leave the disk", lba, entryLBA)
	}
	entries = make([]byte, esectors*SectorSize)
	if _, err := r.ReadAt(entries, int64(entryLBA)*SectorSize); err != nil {
		return h, nil, fmt.Errorf("read GPT entries at LBA %d: %w", entryLBA, err)
	}
	if crc32.ChecksumIEEE(entries[:n*es]) != le.Uint32(h[88:]) {
		return h, nil, fmt.Errorf("GPT entries at LBA %d: checksum is wrong, the table is damaged", entryLBA)
	}
	for i := uint64(0); i < n; i++ {
		e := entries[i*128 : (i+1)*128]
		if isZero(e[:16]) {
			continue
		}
		if start, end := le.Uint64(e[32:]), le.Uint64(e[40:]); start < first || end < start || end > lastUsable {
			return h, nil, fmt.Errorf("GPT entry %d spans sectors %d-%d, outside the usable %d-%d", i+1, start, end, first, lastUsable)
		}
	}
	return h, entries, nil
}

// Partition is one used entry.
type Partition struct {
	// Index is 1-based, as Linux numbers partitions.
	Index      int
	Name       string
	Start, End uint64 // sectors, inclusive
	// GUID is the partition's unique GUID (its PARTUUID), upper case.
	GUID string
}

// Partitions lists the used entries.
func (t *Table) Partitions() []Partition {
	var out []Partition
	n := min(int(le.Uint32(t.Header[80:])), len(t.Entries)/128)
	for i := 0; i < n; i++ {
		e := t.Entries[i*128 : (i+1)*128]
		if isZero(e[:16]) {
			continue
		}
		u := make([]uint16, 36)
		for j := range u {
			u[j] = le.Uint16(e[56+2*j:])
		}
		name := utf16.Decode(u)
		for k, r := range name {
			if r == 0 {
				name = name[:k]
				break
			}
		}
		out = append(out, Partition{Index: i + 1, Name: string(name), Start: le.Uint64(e[32:]), End: le.Uint64(e[40:]), GUID: guidString(e[16:32])})
	}
	return out
}

// LastUsable is the last sector partitions may use.
func (t *Table) LastUsable() uint64 { return le.Uint64(t.Header[48:]) }

// SetEnd moves the end of partition index (1-based) to end.
func (t *Table) SetEnd(index int, end uint64) {
	le.PutUint64(t.Entries[(index-1)*128+40:], end)
}

// DiskGUID is the disk's GUID, upper case.
func (t *Table) DiskGUID() string { return guidString(t.Header[56:72]) }

// NewGUIDs gives the disk and every partition fresh random GUIDs (version
// 4), as a copy of a disk needs to be told apart from its original.
func (t *Table) NewGUIDs() error {
	fresh := func(b []byte) error {
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("make a GUID: %w", err)
		}
		b[7] = b[7]&0x0f | 0x40 // version 4 (the third field is little-endian)
		b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
		return nil
	}
	if err := fresh(t.Header[56:72]); err != nil {
		return err
	}
	for _, p := range t.Partitions() {
		if err := fresh(t.Entries[(p.Index-1)*128+16 : (p.Index-1)*128+32]); err != nil {
			return err
		}
	}
	return nil
}

// guidString formats a GUID as stored on disk (its first three fields
// little-endian).
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// entrySectors is how many sectors the partition array fills.
func (t *Table) entrySectors() uint64 { return uint64(len(t.Entries) / SectorSize) }

// Resize makes the table describe a disk of sectors sectors: the backup
// table at its end, the last usable sector before it, and a protective
// MBR partition covering it (as far as 32 bits go).
func (t *Table) Resize(sectors int64) {
	last := uint64(sectors - 1)
	le.PutUint64(t.Header[32:], last)                    // AlternateLBA
	le.PutUint64(t.Header[48:], last-t.entrySectors()-1) // LastUsableLBA
	for i := 0; i < 4; i++ {
		e := t.MBR[446+16*i:]
		if e[4] == 0xEE {
			le.PutUint32(e[12:], uint32(min(last, 0xFFFFFFFF)))
		}
	}
}

// PrimaryHeader returns the primary header with its checksums computed.
func (t *Table) PrimaryHeader() []byte {
	h := append([]byte(nil), t.Header...)
	n, es := le.Uint32(h[80:]), le.Uint32(h[84:])
	le.PutUint32(h[88:], crc32.ChecksumIEEE(t.Entries[:n*es]))
	setHeaderCRC(h)
	return h
}

// Backup returns the backup partition array followed by the backup
// header, to be written at BackupOffset.
func (t *Table) Backup() []byte {
	h := t.PrimaryHeader()
	last := le.Uint64(h[32:])
	le.PutUint64(h[24:], last)                  // MyLBA
	le.PutUint64(h[32:], 1)                     // AlternateLBA
	le.PutUint64(h[72:], last-t.entrySectors()) // PartitionEntryLBA
	setHeaderCRC(h)
	return append(append([]byte(nil), t.Entries...), h...)
}

// BackupOffset is where Backup goes on a disk of sectors sectors.
func (t *Table) BackupOffset(sectors int64) int64 {
	return (sectors - int64(t.entrySectors()) - 1) * SectorSize
}

// BackupOffset is where the backup table of a thinhost image (128
// entries) starts on a disk of sectors sectors.
func BackupOffset(sectors int64) int64 { return (sectors - EntrySectors - 1) * SectorSize }

// Write writes the whole table — the backup, then the primary entries,
// then the MBR and primary header — to a disk of sectors sectors, each
// step synced before the next when w can (an *os.File can): a crash at
// any point leaves one whole table, the old primary or the new backup,
// which Read falls back to.
func (t *Table) Write(w io.WriterAt, sectors int64) error {
	sync := func(what string) error {
		if s, ok := w.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				return fmt.Errorf("sync %s: %w", what, err)
			}
		}
		return nil
	}
	if _, err := w.WriteAt(t.Backup(), t.BackupOffset(sectors)); err != nil {
		return fmt.Errorf("write backup GPT: %w", err)
	}
	if err := sync("backup GPT"); err != nil {
		return err
	}
	if _, err := w.WriteAt(t.Entries, int64(le.Uint64(t.Header[72:]))*SectorSize); err != nil {
		return fmt.Errorf("write GPT entries: %w", err)
	}
	if err := sync("GPT entries"); err != nil {
		return err
	}
	if _, err := w.WriteAt(append(append([]byte(nil), t.MBR...), t.PrimaryHeader()...), 0); err != nil {
		return fmt.Errorf("write GPT header: %w", err)
	}
	if err := sync("GPT header"); err != nil {
		return err
	}
	t.FromBackup = false
	return nil
}

func setHeaderCRC(h []byte) {
	size := min(int(le.Uint32(h[12:])), len(h))
	le.PutUint32(h[16:], 0)
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:size]))
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
