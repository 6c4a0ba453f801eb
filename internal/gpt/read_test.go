package gpt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
)

// testDisk is a 256 KiB disk with a valid primary and backup table holding
// one partition.
func testDisk(t testing.TB) []byte {
	const sectors = 512
	disk := make([]byte, sectors*SectorSize)
	tab := &Table{MBR: make([]byte, SectorSize), Header: make([]byte, SectorSize), Entries: make([]byte, EntrySectors*SectorSize)}
	tab.MBR[446+4] = 0xEE
	h := tab.Header
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[24:], 1)
	binary.LittleEndian.PutUint64(h[40:], 34)
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	e := tab.Entries
	copy(e, bytes.Repeat([]byte{0x11}, 32)) // type and unique GUIDs
	binary.LittleEndian.PutUint64(e[32:], 64)
	binary.LittleEndian.PutUint64(e[40:], 127)
	tab.Resize(sectors)
	if err := tab.Write(writerAt(disk), sectors); err != nil {
		t.Fatal(err)
	}
	return disk
}

type writerAt []byte

func (w writerAt) WriteAt(p []byte, off int64) (int, error) { return copy(w[off:], p), nil }

func TestReadFallsBackToBackup(t *testing.T) {
	disk := testDisk(t)
	tab, err := Read(bytes.NewReader(disk), int64(len(disk)/SectorSize))
	if err != nil || tab.FromBackup {
		t.Fatalf("valid disk: %v, %v", tab, err)
	}
	// A torn write: the primary entries changed, the header not yet.
	disk[2*SectorSize+40] ^= 1
	tab, err = Read(bytes.NewReader(disk), int64(len(disk)/SectorSize))
	if err != nil || !tab.FromBackup {
		t.Fatalf("torn primary entries: %v, %v; want the backup", tab, err)
	}
	if p := tab.Partitions(); len(p) != 1 || p[0].Start != 64 || p[0].End != 127 {
		t.Errorf("partitions from the backup: %+v", p)
	}
	if le.Uint64(tab.Header[24:]) != 1 || le.Uint64(tab.Header[72:]) != 2 {
		t.Errorf("the backup was not turned into a primary header")
	}
}

// corrupt returns a copy of disk with its primary header changed by edit
// and its checksum made right again, so only the field check can catch it.
func corrupt(disk []byte, edit func(h []byte)) []byte {
	d := append([]byte(nil), disk...)
	h := d[SectorSize : 2*SectorSize]
	edit(h)
	setHeaderCRC(h)
	return d
}

func TestReadRefusesImpossibleHeaders(t *testing.T) {
	disk := testDisk(t)
	sectors := int64(len(disk) / SectorSize)
	// Zero the backup so only the primary is judged.
	copy(disk[len(disk)-SectorSize:], make([]byte, SectorSize))
	for name, edit := range map[string]func(h []byte){
		// 2^25 entries of 128 bytes overflow 32 bits to 0.
		"overflowing entry count": func(h []byte) { le.PutUint32(h[80:], 1<<25) },
		"entry size":              func(h []byte) { le.PutUint32(h[84:], 64) },
		"entries over partitions": func(h []byte) { le.PutUint64(h[72:], 40) },
		"entries past the end":    func(h []byte) { le.PutUint64(h[72:], uint64(sectors)-2) },
		"usable past the end":     func(h []byte) { le.PutUint64(h[48:], uint64(sectors)) },
		"wrong own LBA":           func(h []byte) { le.PutUint64(h[24:], 7) },
		"huge header size":        func(h []byte) { le.PutUint32(h[12:], 1<<31) },
	} {
		d := corrupt(disk, edit)
		if _, err := Read(bytes.NewReader(d), sectors); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An entry outside the usable sectors, checksums right.
	d := append([]byte(nil), disk...)
	le.PutUint64(d[2*SectorSize+40:], uint64(sectors))
	h := d[SectorSize : 2*SectorSize]
	le.PutUint32(h[88:], crc32.ChecksumIEEE(d[2*SectorSize:2*SectorSize+128*128]))
	setHeaderCRC(h)
	if _, err := Read(bytes.NewReader(d), sectors); err == nil || !strings.Contains(err.Error(), "outside the usable") {
		t.Errorf("an entry past the disk's end: %v", err)
	}
}

// FuzzRead feeds Read damaged tables: it never panics, and what it
// accepts lies on the disk.
func FuzzRead(f *testing.F) {
	disk := testDisk(f)
	sec := func(lba int) []byte { return disk[lba*SectorSize : (lba+1)*SectorSize] }
	last := len(disk)/SectorSize - 1
	f.Add(sec(0), sec(1), sec(2), sec(last))
	f.Fuzz(func(t *testing.T, mbr, hdr, ent, backup []byte) {
		// The damage goes where it matters: the MBR, both headers and
		// the first sector of the primary entries.
		d := append([]byte(nil), disk...)
		copy(d[0:SectorSize], mbr)
		copy(d[SectorSize:2*SectorSize], hdr)
		copy(d[2*SectorSize:3*SectorSize], ent)
		copy(d[last*SectorSize:], backup)
		sectors := int64(len(d) / SectorSize)
		tab, err := Read(bytes.NewReader(d), sectors)
		if err != nil {
			return
		}
		for _, p := range tab.Partitions() {
			if p.Start > p.End || p.End >= uint64(sectors) {
				t.Fatalf("accepted partition %+v on a disk of %d sectors", p, sectors)
			}
		}
		tab.Resize(sectors)
		tab.Write(writerAt(d), sectors)
		if _, err := Read(bytes.NewReader(d), sectors); err != nil {
			t.Fatalf("a table Read accepted does not read back after Write: %v", err)
		}
	})
}
