package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/gpt"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestInternalData is storage { data_disk = "internal" } end to end, with
// two more disks beside the image (QEMU's virtio machine, so not USB:
// internal): one holding someone's partition table and data, one empty.
// The first boot makes the data partition on the empty disk (a GPT with
// one partition, ext4 inside) and mounts it; the used disk and the
// image's own data partition stay byte for byte. The second boot mounts
// the same partition (boot 2). A boot with only the used disk comes up
// degraded, names the disk and what it holds, and writes nothing.
func TestInternalData(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	dir := t.TempDir()
	img := filepath.Join(dir, "internal.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", "data_disk=internal", "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	const size = 1 << 30
	used, empty := filepath.Join(dir, "used.raw"), filepath.Join(dir, "empty.raw")
	for _, p := range []string{used, empty} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
	}
	// Someone's disk: a partition table and data where its partition is.
	f, err := os.OpenFile(used, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	table, _ := gpt.New(size/gpt.SectorSize, "windows-data", gpt.LinuxFilesystem)
	if err := table.Write(f, size/gpt.SectorSize); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4<<20)
	rand.Read(junk)
	f.WriteAt(junk, 1<<20)
	f.Close()
	usedSum := imagetest.Hash(t, used)
	stickData := partitionSum(t, img, layout.DataName)

	boot := func(disks ...string) *testHost {
		t.Helper()
		h := startHostConfig(t, qemu.Config{Image: img, MemoryMiB: 1024, Disks: disks})
		h.waitReady(t)
		return h
	}
	// The used disk and the empty one are vdb and vdc, in either order:
	// virtio_blk names disks as it meets them, and it loads while
	// virtio_pci still brings them (the boot does not wait for every
	// driver). Which one got the partition is checked by the disks'
	// bytes below.
	dataLine := regexp.MustCompile(`(?m)^data +/dev/vd[bc]1: `)
	h := boot(used, empty)
	st := h.ctl(t, "status")
	if !dataLine.MatchString(st) || !strings.Contains(st, "boot 1") || !strings.Contains(st, "health    ok") {
		t.Fatalf("first boot: want the data partition made on an internal disk:\n%s\n%s", st, h.tail())
	}
	if !h.con.Seen("making the data partition on the empty internal disk") {
		t.Errorf("hostd did not say it made the partition:\n%s", h.tail())
	}
	h.powerOff(t)
	if imagetest.Hash(t, used) != usedSum {
		t.Errorf("the used disk changed")
	}
	if partitionSum(t, img, layout.DataName) != stickData {
		t.Errorf("the image's own data partition changed with the data on the internal disk")
	}
	ef, et := readTable(t, empty)
	parts := et.Partitions()
	if len(parts) != 1 || parts[0].Name != storage.InternalDataName {
		t.Fatalf("the internal disk's partitions: %+v", parts)
	}
	head := make([]byte, 4096)
	ef.ReadAt(head, int64(parts[0].Start)*gpt.SectorSize)
	if fs := storage.Probe(head); fs != "ext4" {
		t.Errorf("the internal data partition holds %q, want ext4", fs)
	}

	// Boot 2: the same partition, found by its name on an internal disk.
	h = boot(used, empty)
	if st := h.ctl(t, "status"); !dataLine.MatchString(st) || !strings.Contains(st, "boot 2") {
		t.Errorf("second boot: want the same data partition, boot 2:\n%s", st)
	}
	h.powerOff(t)

	// Only the used disk: nothing to use, nothing written.
	h = boot(used)
	if st := h.ctl(t, "status"); !strings.Contains(st, "NOT MOUNTED") || !strings.Contains(st, "/dev/vdb") || !strings.Contains(st, "a GPT partition table") {
		t.Errorf("with only a used internal disk: want the data partition missing, naming /dev/vdb and its table:\n%s", st)
	}
	h.m.Kill()
	h.m.Wait()
	if imagetest.Hash(t, used) != usedSum {
		t.Errorf("the used disk changed on the boot that found no empty disk")
	}
}

// partitionSum is the SHA-256 of the partition named name in the image.
func partitionSum(t *testing.T, img, name string) [32]byte {
	t.Helper()
	f, table := readTable(t, img)
	for _, p := range table.Partitions() {
		if p.Name == name {
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, int64(p.Start)*gpt.SectorSize, int64(p.End-p.Start+1)*gpt.SectorSize)); err != nil {
				t.Fatal(err)
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			return sum
		}
	}
	t.Fatalf("%s has no partition %s", img, name)
	return [32]byte{}
}
