// Package gpt reads and rewrites a GUID partition table in place, with no
// dependencies: flash moves the backup table to the end of a larger
// device, and hostd grows the data partition into free space. (go-diskfs
// writes the tables at build time; this package edits them afterwards.)
package gpt

import (
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
}

// Read reads and checks the primary table of a disk.
func Read(r io.ReaderAt) (*Table, error) {
	t := &Table{MBR: make([]byte, SectorSize), Header: make([]byte, SectorSize)}
	if _, err := r.ReadAt(t.MBR, 0); err != nil {
		return nil, fmt.Errorf("read MBR: %w", err)
	}
	if _, err := r.ReadAt(t.Header, SectorSize); err != nil {
		return nil, fmt.Errorf("read GPT header: %w", err)
	}
	if string(t.Header[:8]) != "EFI PART" {
		return nil, fmt.Errorf("%w: no \"EFI PART\" at LBA 1", ErrNoGPT)
	}
	hsize := le.Uint32(t.Header[12:])
	if hsize < 92 || hsize > SectorSize {
		return nil, fmt.Errorf("GPT header has size %d", hsize)
	}
	check := append([]byte(nil), t.Header[:hsize]...)
	le.PutUint32(check[16:], 0)
	if crc32.ChecksumIEEE(check) != le.Uint32(t.Header[16:]) {
		return nil, fmt.Errorf("GPT header checksum is wrong: the table is damaged")
	}
	n, es := le.Uint32(t.Header[80:]), le.Uint32(t.Header[84:])
	if es != 128 || n == 0 || n*es > EntrySectors*SectorSize {
		return nil, fmt.Errorf("GPT has %d entries of %d bytes; thinhost reads 128-byte entries in %d sectors", n, es, EntrySectors)
	}
	t.Entries = make([]byte, EntrySectors*SectorSize)
	if _, err := r.ReadAt(t.Entries, int64(le.Uint64(t.Header[72:]))*SectorSize); err != nil {
		return nil, fmt.Errorf("read GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(t.Entries[:n*es]) != le.Uint32(t.Header[88:]) {
		return nil, fmt.Errorf("GPT entries checksum is wrong: the table is damaged")
	}
	return t, nil
}

// Partition is one used entry.
type Partition struct {
	// Index is 1-based, as Linux numbers partitions.
	Index      int
	Name       string
	Start, End uint64 // sectors, inclusive
}

// Partitions lists the used entries.
func (t *Table) Partitions() []Partition {
	var out []Partition
	n := int(le.Uint32(t.Header[80:]))
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
		out = append(out, Partition{Index: i + 1, Name: string(name), Start: le.Uint64(e[32:]), End: le.Uint64(e[40:])})
	}
	return out
}

// LastUsable is the last sector partitions may use.
func (t *Table) LastUsable() uint64 { return le.Uint64(t.Header[48:]) }

// SetEnd moves the end of partition index (1-based) to end.
func (t *Table) SetEnd(index int, end uint64) {
	le.PutUint64(t.Entries[(index-1)*128+40:], end)
}

// Resize makes the table describe a disk of sectors sectors: the backup
// table at its end, the last usable sector before it, and a protective
// MBR partition covering it (as far as 32 bits go).
func (t *Table) Resize(sectors int64) {
	last := uint64(sectors - 1)
	le.PutUint64(t.Header[32:], last)                // AlternateLBA
	le.PutUint64(t.Header[48:], last-EntrySectors-1) // LastUsableLBA
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
// header, to be written at the last EntrySectors+1 sectors of the disk.
func (t *Table) Backup() []byte {
	h := t.PrimaryHeader()
	last := le.Uint64(h[32:])
	le.PutUint64(h[24:], last)              // MyLBA
	le.PutUint64(h[32:], 1)                 // AlternateLBA
	le.PutUint64(h[72:], last-EntrySectors) // PartitionEntryLBA
	setHeaderCRC(h)
	return append(append([]byte(nil), t.Entries...), h...)
}

// BackupOffset is where Backup goes on a disk of sectors sectors.
func BackupOffset(sectors int64) int64 { return (sectors - EntrySectors - 1) * SectorSize }

// Write writes the whole table — MBR, primary header, entries and the
// backup — to a disk of sectors sectors. The backup goes first, so a
// crash in between leaves the old primary table whole.
func (t *Table) Write(w io.WriterAt, sectors int64) error {
	if _, err := w.WriteAt(t.Backup(), BackupOffset(sectors)); err != nil {
		return fmt.Errorf("write backup GPT: %w", err)
	}
	if _, err := w.WriteAt(t.Entries, int64(le.Uint64(t.Header[72:]))*SectorSize); err != nil {
		return fmt.Errorf("write GPT entries: %w", err)
	}
	if _, err := w.WriteAt(append(append([]byte(nil), t.MBR...), t.PrimaryHeader()...), 0); err != nil {
		return fmt.Errorf("write GPT header: %w", err)
	}
	return nil
}

func setHeaderCRC(h []byte) {
	size := le.Uint32(h[12:])
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
