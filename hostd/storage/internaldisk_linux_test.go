package storage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/internal/gpt"
)

// TestJudgeDiskEnds: a disk of zeros is empty; one with a partition table,
// a boot sector, or a single byte in its last MiB is not.
func TestJudgeDiskEnds(t *testing.T) {
	const size = 8 << 20
	dir := t.TempDir()
	disk := func(name string, fill func(f *os.File)) *os.File {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if fill != nil {
			fill(f)
		}
		return f
	}
	table, err := gpt.New(size/gpt.SectorSize, InternalDataName, gpt.LinuxFilesystem)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		fill  func(f *os.File)
		empty bool
		holds string
	}{
		{"zeros", nil, true, ""},
		{"gpt", func(f *os.File) { table.Write(f, size/gpt.SectorSize) }, false, "a GPT partition table"},
		{"mbr", func(f *os.File) { f.WriteAt([]byte{0x55, 0xAA}, 510) }, false, "an MBR partition table or boot sector"},
		{"tail", func(f *os.File) { f.WriteAt([]byte{1}, size-4096) }, false, "data in its first 64 MiB or its last MiB"},
		{"wiped table", func(f *os.File) { f.WriteAt([]byte{0x53, 0xEF}, 1<<20+0x438) }, false, "ext4 at 1 MiB (a partition whose table was wiped)"},
		{"deeper", func(f *os.File) { f.WriteAt([]byte{1}, 5<<20) }, false, "data in its first 64 MiB or its last MiB"},
	} {
		empty, holds := judgeDiskEnds(disk(c.name, c.fill), size)
		if empty != c.empty || holds != c.holds {
			t.Errorf("%s: empty=%v holds=%q; want %v %q", c.name, empty, holds, c.empty, c.holds)
		}
	}
}

// TestTornInternalTable: a table hostd stopped writing after its backup
// (Write's first step) reads back from the backup as thinhost's internal
// table, which internalDisks marks torn for hostd to finish; a foreign
// table does not.
func TestTornInternalTable(t *testing.T) {
	const size = 8 << 20
	sectors := int64(size / gpt.SectorSize)
	for _, c := range []struct {
		name string
		want bool
	}{{InternalDataName, true}, {"windows-data", false}} {
		path := filepath.Join(t.TempDir(), "disk")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(size)
		table, _ := gpt.New(sectors, c.name, gpt.LinuxFilesystem)
		f.WriteAt(table.Backup(), table.BackupOffset(sectors))
		back, err := gpt.Read(f, sectors)
		f.Close()
		if err != nil || !back.FromBackup {
			t.Fatalf("%s: read %v, from backup %v", c.name, err, back != nil && back.FromBackup)
		}
		if holdsInternal(back) != c.want {
			t.Errorf("%s: holdsInternal = %v", c.name, !c.want)
		}
	}
}
