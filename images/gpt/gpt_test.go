package gpt_test

import (
	"os"
	"testing"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/gpt"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
)

// TestGrowLastPartition grows an image file by 256 MiB, moves the backup
// table to the new end and the data partition's end with it, and checks
// the result with sgdisk -v.
func TestGrowLastPartition(t *testing.T) {
	img, _ := imagetest.WriteSmall(t, t.TempDir())
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := gpt.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	parts := table.Partitions()
	last := parts[len(parts)-1]
	if last.Name != layout.DataName || last.Index != 4 {
		t.Fatalf("last partition = %+v", last)
	}
	sectors := int64(512 << 20 / gpt.SectorSize)
	table.Resize(sectors)
	end := (table.LastUsable()+1)/2048*2048 - 1
	table.SetEnd(last.Index, end)
	if err := table.Write(f, sectors); err != nil {
		t.Fatal(err)
	}
	got := imagetest.Check(t, img)
	if size := got[3].Size(); size != int64(end-last.Start+1)*512 || size != 382<<20 {
		t.Errorf("data partition is %d bytes after growing", size)
	}
	var _ images.Partition = got[0]

	// Damage is detected, not trusted.
	f.WriteAt([]byte{0xff}, 512+40)
	if _, err := gpt.Read(f); err == nil {
		t.Error("a header with a wrong checksum was accepted")
	}
}
