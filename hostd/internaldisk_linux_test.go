package hostd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/images/gpt"
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
		{"tail", func(f *os.File) { f.WriteAt([]byte{1}, size-4096) }, false, "data in its first or last MiB"},
	} {
		empty, holds := judgeDiskEnds(disk(c.name, c.fill), size)
		if empty != c.empty || holds != c.holds {
			t.Errorf("%s: empty=%v holds=%q; want %v %q", c.name, empty, holds, c.empty, c.holds)
		}
	}
}
