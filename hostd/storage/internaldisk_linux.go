package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/gpt"
)

// findInternalData finds the data partition on an internal disk, or makes
// it on the one empty internal disk (ChooseInternal), waiting up to wait
// for disks to appear. The boot disk is left out (found by its ESP), and
// so is every USB or removable disk: the stick a person plugs in is not
// where the data goes.
func findInternalData(ctx context.Context, log *slog.Logger, serial string, wait time.Duration) (part, disk string, err error) {
	_, boot, err := FindPartition(ctx, layout.ESPName, wait)
	if err != nil {
		return "", "", fmt.Errorf("find the boot disk, which the internal data disk must not be: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		disks := internalDisks(boot)
		d, create, cerr := ChooseInternal(disks, serial)
		if cerr == nil {
			if d.Torn {
				p, err := finishInternalTable(ctx, log, d)
				if err != nil {
					return "", "", err
				}
				return p, d.Name, nil
			}
			if !create {
				return d.Part, d.Name, nil
			}
			// Disks come up one by one: an empty one seen first must
			// still be the choice a moment later, when the rest are
			// there too.
			select {
			case <-ctx.Done():
				return "", "", ctx.Err()
			case <-time.After(time.Second):
			}
			again, create2, err2 := ChooseInternal(internalDisks(boot), serial)
			if err2 != nil || again.Name != d.Name || !create2 {
				continue
			}
			p, err := makeInternalData(ctx, log, d)
			if err != nil {
				return "", "", err
			}
			return p, d.Name, nil
		}
		if time.Now().After(deadline) {
			return "", "", cerr
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// internalDisks lists the disks that count as internal: not boot, not on
// USB, not removable, not virtual (loop, RAM, device mapper, RAID, CD).
func internalDisks(boot string) []InternalDisk {
	var out []InternalDisk
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		name := e.Name()
		if name == boot || virtualDisk(name) {
			continue
		}
		dir := filepath.Join("/sys/block", name)
		if readSys(dir, "removable") == "1" || readSys(dir, "ro") == "1" {
			continue
		}
		if real, err := filepath.EvalSymlinks(dir); err != nil || strings.Contains(real, "/usb") {
			continue
		}
		sectors, err := diskSectors(name)
		if err != nil || sectors == 0 {
			continue
		}
		d := InternalDisk{Name: name, Bytes: sectors * 512, Serial: diskSerial(dir)}
		d.Part, _ = partitionOn(name, InternalDataName)
		if d.Part == "" {
			d.Empty, d.Holds = diskEnds(name, sectors*512)
		}
		if d.Part == "" && !d.Empty {
			if t, err := diskTable(name); err == nil && t.FromBackup && holdsInternal(t) {
				d.Torn = true
			}
		}
		if lbs := readSys(dir, "queue/logical_block_size"); lbs != "" && lbs != "512" && d.Part == "" {
			// thinhost's tables are written in 512-byte sectors.
			d.Empty, d.Holds = false, "logical sectors of "+lbs+" bytes, which hostd's partition tables do not support yet"
		}
		out = append(out, d)
	}
	return out
}

func virtualDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd", "fd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	// eMMC's boot and RPMB areas are not for data.
	return strings.Contains(name, "boot") || strings.HasSuffix(name, "rpmb")
}

func readSys(dir, file string) string {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// diskSerial is the disk's serial number as the kernel shows it: NVMe
// and eMMC in device/serial, virtio in serial, SCSI and SATA in the VPD
// page 0x80 (after its 4-byte header).
func diskSerial(dir string) string {
	for _, f := range []string{"device/serial", "serial"} {
		if s := readSys(dir, f); s != "" {
			return s
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "device", "vpd_pg80")); err == nil && len(b) > 4 {
		return strings.TrimSpace(strings.Trim(string(b[4:]), "\x00"))
	}
	return ""
}

// diskEnds reads a whole disk's first 64 MiB and last MiB: empty when
// all zeros, else what it holds, named for the message.
func diskEnds(name string, size int64) (empty bool, holds string) {
	f, err := os.Open("/dev/" + name)
	if err != nil {
		return false, fmt.Sprintf("something hostd cannot read (%v)", err)
	}
	defer f.Close()
	return judgeDiskEnds(f, size)
}

// emptyHead is how much of a disk's start must be zeros: the first
// partitions of every common layout start in it (1 MiB, 2 MiB, Windows'
// recovery, EFI and reserved partitions, within the first 64 MiB), so a
// disk whose partition table alone was wiped still shows its filesystems.
const emptyHead = 64 << 20

func judgeDiskEnds(f *os.File, size int64) (bool, string) {
	head, tail := make([]byte, min(size, emptyHead)), make([]byte, min(size, int64(blankSpan)))
	if err := readAt(f, head, 0); err != nil {
		return false, fmt.Sprintf("something hostd cannot read (%v)", err)
	}
	if err := readAt(f, tail, size-int64(len(tail))); err != nil {
		return false, fmt.Sprintf("something hostd cannot read (%v)", err)
	}
	if allZero(head) && allZero(tail) {
		return true, ""
	}
	switch {
	case len(head) >= 520 && string(head[512:520]) == "EFI PART":
		return false, "a GPT partition table"
	case len(head) >= 512 && head[510] == 0x55 && head[511] == 0xAA:
		return false, "an MBR partition table or boot sector"
	}
	if fs := Probe(head); fs != "" {
		return false, fs
	}
	// A filesystem where a partition used to start.
	for _, at := range []int{1 << 20, 2 << 20} {
		if at < len(head) {
			if fs := Probe(head[at:]); fs != "" {
				return false, fmt.Sprintf("%s at %d MiB (a partition whose table was wiped)", fs, at>>20)
			}
		}
	}
	return false, "data in its first 64 MiB or its last MiB"
}

// makeInternalData gives the empty disk d a partition table with one
// partition, InternalDataName, over the whole disk, and returns the
// partition once the kernel shows it. The disk is opened exclusively (no
// one else may have it open for writing or mounted) and read again
// through that descriptor before anything is written: it must still be
// empty. The partition starts out all zeros, which SetupData then treats
// as thinhost's own empty data partition (marker, then a filesystem):
// it lies within what judgeDiskEnds found all zeros at its start.
func makeInternalData(ctx context.Context, log *slog.Logger, d InternalDisk) (string, error) {
	dev := "/dev/" + d.Name
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return "", fmt.Errorf("open %s for its partition table: %w (is something using it?)", dev, err)
	}
	defer f.Close()
	if empty, holds := judgeDiskEnds(f, d.Bytes); !empty {
		return "", fmt.Errorf("%s was empty a moment ago and now holds %s: hostd leaves it untouched", dev, holds)
	}
	sectors := d.Bytes / gpt.SectorSize
	t, err := gpt.New(sectors, InternalDataName, gpt.LinuxFilesystem)
	if err != nil {
		return "", fmt.Errorf("partition table for %s: %w", dev, err)
	}
	log.Info("making the data partition on the empty internal disk", "disk", dev, "serial", d.Serial, "size", d.Bytes, "disk_guid", t.DiskGUID())
	return writeInternalTable(ctx, f, d, t)
}

// holdsInternal says whether t's only partition is thinhost's internal
// data partition.
func holdsInternal(t *gpt.Table) bool {
	parts := t.Partitions()
	return len(parts) == 1 && parts[0].Name == InternalDataName
}

// finishInternalTable writes the primary copy of the table a stopped boot
// left in the backup alone (d.Torn), read again through an exclusive
// open, and returns the partition.
func finishInternalTable(ctx context.Context, log *slog.Logger, d InternalDisk) (string, error) {
	dev := "/dev/" + d.Name
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return "", fmt.Errorf("open %s to finish its partition table: %w (is something using it?)", dev, err)
	}
	defer f.Close()
	t, err := gpt.Read(f, d.Bytes/gpt.SectorSize)
	if err != nil || !t.FromBackup || !holdsInternal(t) {
		return "", fmt.Errorf("%s no longer holds the half-written table hostd found: hostd leaves it untouched (%v)", dev, err)
	}
	log.Warn("finishing the internal data disk's partition table, which a stopped boot left half written", "disk", dev)
	return writeInternalTable(ctx, f, d, t)
}

// writeInternalTable writes t to the disk d (open as f), has the kernel
// read it, and returns the data partition once the kernel shows it.
func writeInternalTable(ctx context.Context, f *os.File, d InternalDisk, t *gpt.Table) (string, error) {
	dev := "/dev/" + d.Name
	if err := t.Write(f, d.Bytes/gpt.SectorSize); err != nil {
		return "", fmt.Errorf("write the partition table of %s: %w", dev, err)
	}
	// BLKRRPART: the kernel reads the new table (the descriptor is ours
	// alone, so it may).
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return "", fmt.Errorf("have the kernel read the new partition table of %s: %w", dev, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, ok := partitionOn(d.Name, InternalDataName); ok {
			return p, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the kernel shows no %s partition on %s after writing its table", InternalDataName, dev)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
