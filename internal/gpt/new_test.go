package gpt_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs"
	dgpt "github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/thinhost/thinhost/internal/gpt"
)

// TestNew writes a fresh one-partition table on an empty 64 MiB disk and
// reads it back three ways: this package, go-diskfs, and sgdisk -v (when the
// machine has it): one Linux filesystem partition from 1 MiB to the last
// whole MiB, named, with random GUIDs that differ between tables.
func TestNew(t *testing.T) {
	const size = 64 << 20
	sectors := int64(size / gpt.SectorSize)
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	table, err := gpt.New(sectors, "thinhost-data-internal", gpt.LinuxFilesystem)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := table.Write(f, sectors); err != nil {
		t.Fatal(err)
	}
	f.Close()

	f, _ = os.Open(path)
	back, err := gpt.Read(f, sectors)
	f.Close()
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	parts := back.Partitions()
	if len(parts) != 1 || parts[0].Name != "thinhost-data-internal" || parts[0].Start != 2048 || parts[0].End != uint64(sectors)-2048-1 {
		t.Fatalf("partitions %+v", parts)
	}

	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatalf("go-diskfs reads no table: %v", err)
	}
	gt, ok := pt.(*dgpt.Table)
	if !ok || len(gt.Partitions) == 0 {
		t.Fatalf("go-diskfs: %T", pt)
	}
	var used []*dgpt.Partition
	for _, p := range gt.Partitions {
		if p != nil && p.Type != dgpt.Unused {
			used = append(used, p)
		}
	}
	if len(used) != 1 || !strings.EqualFold(string(used[0].Type), gpt.LinuxFilesystem) || used[0].Name != "thinhost-data-internal" ||
		!strings.EqualFold(used[0].GUID, parts[0].GUID) {
		t.Errorf("go-diskfs reads %+v; want one Linux filesystem partition with GUID %s", used, parts[0].GUID)
	}
	d.Close()

	if sgdisk, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command(sgdisk, "-v", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("sgdisk -v: %v\n%s", err, out)
		}
	}

	other, err := gpt.New(sectors, "thinhost-data-internal", gpt.LinuxFilesystem)
	if err != nil {
		t.Fatal(err)
	}
	if other.DiskGUID() == back.DiskGUID() || other.Partitions()[0].GUID == parts[0].GUID {
		t.Error("two fresh tables share GUIDs")
	}
	for _, c := range []struct {
		sectors  int64
		name, ty string
	}{{2048, "x", gpt.LinuxFilesystem}, {sectors, "", gpt.LinuxFilesystem}, {sectors, strings.Repeat("n", 37), gpt.LinuxFilesystem}, {sectors, "x", "not-a-guid"}} {
		if _, err := gpt.New(c.sectors, c.name, c.ty); err == nil {
			t.Errorf("New(%d, %q, %q) should fail", c.sectors, c.name, c.ty)
		}
	}
}
