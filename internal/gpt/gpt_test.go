package gpt_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/gpt"
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
	table, err := gpt.Read(f, 512<<20/gpt.SectorSize)
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
	for i, p := range table.Partitions() {
		if p.GUID != got[i].GUID || p.Name != got[i].Name {
			t.Errorf("partition %d: gpt reads %s %q, go-diskfs %s %q", i+1, p.GUID, p.Name, got[i].GUID, got[i].Name)
		}
	}

	// Fresh GUIDs: all different from the image's, the table still valid.
	disk := table.DiskGUID()
	if err := table.NewGUIDs(); err != nil {
		t.Fatal(err)
	}
	if err := table.Write(f, sectors); err != nil {
		t.Fatal(err)
	}
	fresh := imagetest.Check(t, img)
	if table.DiskGUID() == disk {
		t.Error("the disk GUID did not change")
	}
	for i, p := range table.Partitions() {
		if p.GUID == got[i].GUID || p.GUID != fresh[i].GUID || !regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`).MatchString(p.GUID) {
			t.Errorf("partition %d: GUID %s after NewGUIDs (was %s, read back %s)", i+1, p.GUID, got[i].GUID, fresh[i].GUID)
		}
	}

	// A damaged primary header is not trusted: the backup (at the new
	// end) is read instead, and writing the table repairs the primary.
	f.WriteAt([]byte{0xff}, 512+40)
	fromBackup, err := gpt.Read(f, sectors)
	if err != nil || !fromBackup.FromBackup {
		t.Fatalf("primary damaged: Read = %v, %v; want the backup", fromBackup, err)
	}
	if got := fromBackup.Partitions(); len(got) != len(parts) || got[3].End != end {
		t.Errorf("partitions read from the backup = %+v", got)
	}
	if err := fromBackup.Write(f, sectors); err != nil {
		t.Fatal(err)
	}
	imagetest.Check(t, img)
	if again, err := gpt.Read(f, sectors); err != nil || again.FromBackup {
		t.Errorf("after the repair: %v, %v; want the primary", again, err)
	}

	// Both damaged: an error, never a guess.
	f.WriteAt([]byte{0xff}, 512+40)
	f.WriteAt([]byte{0xff}, (sectors-1)*512+40)
	if _, err := gpt.Read(f, sectors); err == nil {
		t.Error("a disk with both headers damaged was read")
	}
}
