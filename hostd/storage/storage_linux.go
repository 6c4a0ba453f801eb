package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/gpt"
)

// DataDir is where the data partition is mounted.
const DataDir = layout.DataDir

// DataDirs are created on the data partition.
var DataDirs = []string{"vms", "shares", "state", "logs"}

// Programs hostd runs for the data partition, from the system image.
const (
	mke2fs  = "/sbin/mke2fs"
	e2fsck  = "/sbin/e2fsck"
	tune2fs = "/sbin/tune2fs"
)

// DataStatus is what hostd knows of the data partition: the API's.
type DataStatus = api.Data

// DataLine is the console summary.
func DataLine(s *DataStatus) string {
	if s.Problem != "" {
		return api.DataPrefix + "partition NOT MOUNTED: " + s.Problem
	}
	var did []string
	if s.Created {
		did = append(did, "created")
	}
	if s.Grown {
		did = append(did, "grown")
	}
	if s.Repaired {
		did = append(did, "repaired")
	}
	extra := ""
	if len(did) > 0 {
		extra = ", " + strings.Join(did, " and ") + " this boot"
	}
	enc := ""
	switch {
	case s.Encrypted && s.Unlock == api.UnlockTPM:
		enc = " (encrypted, unlocked by the TPM)"
	case s.Encrypted:
		enc = " (encrypted)"
	}
	return fmt.Sprintf("%s%s on %s%s: %d MiB, %d MiB free, boot %d%s",
		api.DataPrefix, DataDir, s.Device, enc, s.Size>>20, s.Free>>20, s.Boot, extra)
}

// DataOptions are the profile's storage choices hostd acts on.
type DataOptions struct {
	Encrypt bool
	// TPM seals the encrypted partition's key to the TPM (PCR 7), with a
	// recovery key shown once.
	TPM bool
	// SecureBootOn says the firmware booted with Secure Boot on: a key
	// is sealed to PCR 7 only then (with it off, PCR 7 is the same for
	// whatever boots).
	SecureBootOn bool
	// Internal puts the data partition on an internal disk, the one
	// with Serial when that is set.
	Internal bool
	Serial   string
	// FirstBoot takes the first-boot secrets the builder left on the
	// empty partition (config.FirstBoot as JSON), which are zeroed on the
	// partition before anything is made there.
	FirstBoot func(payload []byte)
	// BeforeMount, when set, is called once the filesystem is made or
	// checked, before it is mounted: the boot waits there for ext4's
	// module, which mke2fs and e2fsck do not need.
	BeforeMount func()
	// Filesystem, when set, is called with the data filesystem's UUID
	// as soon as it is known (read from its superblock, or chosen for
	// mke2fs), before the filesystem is checked, made or mounted: smbd
	// starts then, its machine SID made of it.
	Filesystem func(uuid [16]byte)
}

// SetupData finds the data partition on the boot disk, grows it into free
// space after it, creates ext4 on it only when thinhost left it empty,
// checks it when it holds ext4, and mounts it. Anything else on it is
// someone's data: hostd leaves it untouched, comes up without it and says
// why. On the first boot (the partition still empty) the disk and its
// partitions get fresh GUIDs, so sticks flashed from one image differ.
//
// With encrypt, the empty partition becomes LUKS2 (a passphrase chosen on
// a console, through ask) with the filesystem inside; a LUKS2 partition
// is opened with the passphrase at every boot, whatever encrypt says.
//
// With internal, the data partition is on an internal disk instead
// (findInternalData: made on an empty one), which gets no fresh GUIDs and
// no growth (its partition fills it from the start); the same rules
// decide what may be formatted.
func SetupData(ctx context.Context, log *slog.Logger, opts DataOptions, ask Asker) *DataStatus {
	st := &DataStatus{}
	// mark logs (with thinhost.debug) how long each part took.
	last := time.Now()
	mark := func(part string) {
		now := time.Now()
		log.Debug("data partition", "step", part, "took", now.Sub(last).Round(time.Millisecond))
		last = now
	}
	fail := func(format string, a ...any) *DataStatus {
		st.Problem = fmt.Sprintf(format, a...)
		log.Error("data partition", "problem", st.Problem)
		return st
	}
	encrypt := opts.Encrypt
	var part, disk string
	var err error
	if opts.Internal {
		part, disk, err = findInternalData(ctx, log, opts.Serial, 10*time.Second)
	} else {
		part, disk, err = FindPartition(ctx, layout.DataName, 10*time.Second)
	}
	if err != nil {
		return fail("%v", err)
	}
	st.Device = "/dev/" + part
	mark("found")

	f, err := os.Open(st.Device)
	if err != nil {
		return fail("open %s: %v", st.Device, err)
	}
	fs, err := probeReader(f)
	if err != nil {
		f.Close()
		return fail("read %s: %v", st.Device, err)
	}
	// The filesystem's identity, as early as it is known: for ext4 on
	// the partition itself, now.
	identified := false
	identify := func(id [16]byte) {
		if !identified && opts.Filesystem != nil {
			identified = true
			opts.Filesystem(id)
		}
	}
	if fs == "ext4" {
		if id, ok := readExt4UUID(f); ok {
			identify(id)
		}
	}
	var blank Blank
	if fs != "ext4" && fs != "crypto_LUKS" {
		size, err := f.Seek(0, io.SeekEnd)
		if err == nil {
			blank, err = JudgeBlank(f, size)
		}
		if err != nil {
			f.Close()
			return fail("read %s: %v", st.Device, err)
		}
	}
	f.Close()
	if fs != "ext4" && fs != "crypto_LUKS" && !blank.OK {
		return fail("%s %s: not ext4, and not the empty partition thinhost made; hostd never formats it and leaves it untouched: back it up and wipe it (wipefs -a) to use it, or restore the ext4 that was there", st.Device, blank.Why)
	}
	if _, err := os.Stat(sysimage.Loader); err != nil {
		return fail("the system image is not mounted on %s, so hostd has no mke2fs or e2fsck to set up %s; see the console above for why, and rebuild the image with this thinhost", sysimage.Dir, st.Device)
	}
	if blank.OK && !blank.Marked {
		// All zeros, from before images carried the marker: record that
		// hostd left it empty before anything else changes, so a crash
		// between here and mke2fs finds it blank again.
		if err := writeMarker(st.Device); err != nil {
			return fail("mark the empty data partition %s: %v", st.Device, err)
		}
	}
	if blank.OK && blank.FirstBoot != nil {
		// Read, then gone from the partition before the filesystem or
		// LUKS2 goes over it: mke2fs leaves unused blocks as they were,
		// and LUKS2 would hide them under its ciphertext, not erase them.
		// A boot that stops before the filesystem keeps nothing: the
		// passphrases are then given again with ctl wifi connect.
		if err := zeroAt(st.Device, layout.DataMarkerSize, blank.FirstBootSpan); err != nil {
			return fail("clear the first-boot secrets on %s: %v", st.Device, err)
		}
		if opts.FirstBoot != nil {
			opts.FirstBoot(blank.FirstBoot)
		}
		log.Info("took the first-boot secrets from the empty data partition", "device", st.Device, "bytes", blank.FirstBootSpan)
	}
	// The partition table: fresh GUIDs on the first boot, the data
	// partition grown to the disk's end, a damaged primary repaired.
	if !opts.Internal {
		if err := updateTable(log, disk, part, blank.OK); err != nil {
			log.Warn("update the partition table", "disk", "/dev/"+disk, "err", err)
		}
	}
	mark("read")
	// fsDev holds the filesystem: the partition, or its opened LUKS2
	// mapping.
	fsDev := st.Device
	makeFS := blank.OK
	switch {
	case fs == "crypto_LUKS":
		st.Encrypted = true
		var typed string
		st.Unlock, st.TPMProblem, typed, err = openLUKS(ctx, log, st.Device, ask, opts.TPM)
		if err != nil {
			return fail("unlock the encrypted data partition %s: %v", st.Device, err)
		}
		if !opts.TPM {
			// A TPM key from when the profile asked for one: tried, but
			// its failing is no problem of this profile's.
			st.TPMProblem = ""
		}
		fsDev = "/dev/mapper/" + DataMapper
		// A header hostd made, with no filesystem inside yet: a boot
		// stopped between the two. Still empty; made again.
		label, err := luksLabelOf(ctx, st.Device)
		if err != nil {
			log.Warn("read the LUKS2 label", "device", st.Device, "err", err)
		} else if label == luksLabelNew {
			makeFS = true
		}
		// Someone else's container, opened by the passphrase typed: what
		// is inside is theirs.
		if !makeFS {
			inner := "nothing hostd recognises"
			if f, err := os.Open(fsDev); err == nil {
				if fs, err := probeReader(f); err == nil && fs != "" {
					inner = fs
				}
				f.Close()
			}
			if inner != "ext4" {
				closeLUKS(log)
				return fail("%s is LUKS that the passphrase opens, but it holds %s, not the ext4 thinhost makes: hostd leaves it untouched", st.Device, inner)
			}
		}
		// thinhost's own container (its label, ext4 inside), opened by a
		// person rather than the TPM: its TPM key is sealed again to the
		// TPM as it is now. Anyone else's container gets no keyslot.
		if opts.TPM && st.Unlock != api.UnlockTPM && (label == luksLabel || label == luksLabelNew) {
			if err := enrollTPM(ctx, log, st.Device, typed, opts.SecureBootOn); err != nil {
				log.Warn("the data partition's key is not sealed to the TPM", "device", st.Device, "err", err)
				st.TPMProblem = err.Error()
			} else {
				st.TPMProblem = ""
			}
		}
	case blank.OK && encrypt:
		st.Encrypted = true
		if st.TPMProblem, err = formatLUKS(ctx, log, st.Device, ask, opts.TPM, opts.SecureBootOn); err != nil {
			return fail("encrypt the empty data partition %s: %v", st.Device, err)
		}
		// Made this boot: Unlock stays empty (nothing had to open it).
		fsDev = "/dev/mapper/" + DataMapper
	case fs == "ext4" && encrypt:
		log.Warn("the data partition is not encrypted: it held files before the profile asked for encryption, and hostd encrypts only an empty one", "device", st.Device)
	}
	if makeFS {
		// The new filesystem's UUID is chosen here, known before mke2fs
		// runs.
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return fail("choose the new filesystem's UUID: %v", err)
		}
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80 // version 4, RFC 4122
		identify(id)
		log.Info("creating ext4 on the empty data partition", "device", fsDev)
		// ea_inode: the shares' alternate data streams up to 64 KiB.
		// nodiscard: nothing is thrown away that a mistake could want back.
		if out, err := sysimage.Command(ctx, mke2fs, "-q", "-t", "ext4", "-O", "ea_inode", "-E", "nodiscard", "-L", layout.DataName, "-m", "1",
			"-U", uuidString(id), fsDev).CombinedOutput(); err != nil {
			return fail("create ext4 on %s: %v: %s", fsDev, err, strings.TrimSpace(string(out)))
		}
		if st.Encrypted {
			// From here on the header speaks for a filesystem.
			if err := setLUKSLabel(ctx, st.Device, luksLabel); err != nil {
				return fail("%v", err)
			}
		} else if err := clearMarker(st.Device); err != nil {
			// mke2fs leaves the first 1024 bytes alone: the marker goes,
			// so nothing but the ext4 speaks for the partition from now
			// on.
			log.Warn("clear the empty-data marker", "device", st.Device, "err", err)
		}
		st.Created = true
		mark("made")
	} else {
		if f, err := os.Open(fsDev); err == nil {
			// ext4 inside LUKS2: known once opened.
			if id, ok := readExt4UUID(f); ok {
				identify(id)
			}
			f.Close()
		}
		out, err := sysimage.Command(ctx, e2fsck, "-p", fsDev).CombinedOutput()
		code := exitCode(err)
		switch {
		case code == 0 && strings.Contains(string(out), e2fsckErrorsRecorded):
			// The kernel recorded an error while it ran (KernelWatch said
			// so then): e2fsck checked everything and found nothing
			// more to mend than that record.
			st.Repaired = true
			log.Warn("data partition checked in full after an error the kernel recorded", "device", st.Device, "e2fsck", strings.TrimSpace(string(out)))
		case code == 0:
		case code == 1 || code == 2:
			st.Repaired = true
			log.Warn("data partition repaired", "device", st.Device, "e2fsck", strings.TrimSpace(string(out)))
		default:
			return fail("e2fsck %s found errors it cannot repair (exit %d); the partition is left untouched: %s", fsDev, code, strings.TrimSpace(string(out)))
		}
		enableEAInode(ctx, log, fsDev)
		mark("checked")
	}

	if err := os.MkdirAll(DataDir, 0o755); err != nil {
		return fail("create %s: %v", DataDir, err)
	}
	if opts.BeforeMount != nil {
		opts.BeforeMount()
		mark("modules")
	}
	// errors=continue, whatever the superblock says: remount-ro aborts
	// the journal, and what was written in the seconds before the error
	// (a file a guest has just saved) is gone (TestDataErrors saw it).
	// The kernel watch says the error in the health, hostd flushes what
	// is written, and the next boot's e2fsck repairs the partition.
	if err := unix.Mount(fsDev, DataDir, DataFS, unix.MS_NOATIME|unix.MS_NODEV, "errors=continue"); err != nil {
		return fail("mount %s on %s: %v", fsDev, DataDir, err)
	}
	st.Mounted = true
	mark("mounted")
	// At every boot: a filesystem smaller than its partition (grown by
	// this boot, or by one that stopped before the filesystem followed)
	// grows online.
	if grown, err := growFS(fsDev, DataDir); err != nil {
		log.Warn("grow the data filesystem", "device", fsDev, "err", err)
	} else if grown {
		st.Grown = true
	}
	if st.Created {
		recordIdentity(log, disk)
	}
	for _, d := range DataDirs {
		if err := os.MkdirAll(filepath.Join(DataDir, d), 0o755); err != nil {
			log.Warn("create data directory", "dir", d, "err", err)
		}
	}
	mark("grown")
	st.Boot = countBoot(log)
	mark("counted")
	var fsst unix.Statfs_t
	if err := unix.Statfs(DataDir, &fsst); err == nil {
		st.Size = int64(fsst.Blocks) * fsst.Bsize
		st.Free = int64(fsst.Bavail) * fsst.Bsize
	}
	return st
}

// readExt4UUID reads the UUID of the ext4 on r (Ext4UUID).
func readExt4UUID(r io.ReaderAt) ([16]byte, bool) {
	head := make([]byte, 2048)
	if _, err := r.ReadAt(head, 0); err != nil {
		return [16]byte{}, false
	}
	return Ext4UUID(head)
}

// e2fsckErrorsRecorded is what e2fsck -p says of a filesystem whose
// superblock records an error.
const e2fsckErrorsRecorded = "contains a file system with errors"

// enableEAInode turns on ext4's ea_inode feature on a checked, unmounted
// data partition made before thinhost created it with the feature (tune2fs
// sets it in place; nothing else changes). Failing leaves streams limited
// to about 4 KiB, not the host down.
func enableEAInode(ctx context.Context, log *slog.Logger, dev string) {
	f, err := os.Open(dev)
	if err != nil {
		log.Warn("read data partition features", "device", dev, "err", err)
		return
	}
	head := make([]byte, 2048)
	_, err = f.ReadAt(head, 0)
	f.Close()
	incompat, ok := Ext4Incompat(head)
	if err != nil || !ok || incompat&Ext4EAInode != 0 {
		return
	}
	if out, err := sysimage.Command(ctx, tune2fs, "-O", "ea_inode", dev).CombinedOutput(); err != nil {
		log.Warn("enable ea_inode on the data partition (alternate data streams stay under 4 KiB)", "device", dev, "err", err, "output", strings.TrimSpace(string(out)))
		return
	}
	log.Info("data partition: ea_inode enabled (alternate data streams up to 64 KiB)", "device", dev)
}

// countBoot increments state/boots on the data partition and returns it.
func countBoot(log *slog.Logger) int {
	p := filepath.Join(DataDir, "state", "boots")
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)+"\n"), 0o644); err == nil {
		if f, err := os.Open(tmp); err == nil {
			f.Sync()
			f.Close()
		}
		if err := os.Rename(tmp, p); err != nil {
			log.Warn("count boots", "err", err)
		}
	}
	return n
}

// UnmountData syncs and unmounts the data partition.
func UnmountData(log *slog.Logger) {
	unix.Sync()
	if err := unix.Unmount(DataDir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		log.Warn("unmount data partition", "dir", DataDir, "err", err)
		return
	}
	log.Info("data partition unmounted", "dir", DataDir)
	closeLUKS(log)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// updateTable rewrites the boot disk's partition table where it needs it:
// fresh random disk and partition GUIDs when fresh (the first boot), the
// data partition part grown to the disk's end when it is the last
// partition on the disk by position, and the primary table repaired from
// the backup when it was damaged. Nothing is written when nothing
// changes.
func updateTable(log *slog.Logger, disk, part string, fresh bool) error {
	sectors, err := diskSectors(disk)
	if err != nil {
		return err
	}
	f, err := os.OpenFile("/dev/"+disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := gpt.Read(f, sectors)
	if err != nil {
		return fmt.Errorf("read the partition table of /dev/%s: %w", disk, err)
	}
	change := t.FromBackup
	if t.FromBackup {
		log.Warn("the primary partition table is damaged: repairing it from the backup", "disk", "/dev/"+disk)
	}
	if fresh {
		if err := t.NewGUIDs(); err != nil {
			return err
		}
		log.Info("first boot: the disk and its partitions get fresh GUIDs", "disk", "/dev/"+disk, "disk_guid", t.DiskGUID())
		change = true
	}
	// The backup table belongs at the disk's end (a stick larger than
	// the image, or one that grew), and the data partition grows only
	// when nothing lies after it.
	if t.Header != nil && binary.LittleEndian.Uint64(t.Header[32:]) != uint64(sectors-1) {
		change = true
	}
	t.Resize(sectors)
	var last gpt.Partition
	for _, p := range t.Partitions() {
		if p.End > last.End {
			last = p
		}
	}
	const align = 2048 // 1 MiB in sectors
	grow := false
	if "/dev/"+part != partitionDevice(disk, last.Index) {
		log.Warn("the data partition is not the last on its disk: it keeps its size", "device", "/dev/"+part, "last", partitionDevice(disk, last.Index))
	} else if end := (t.LastUsable()+1)/align*align - 1; end > last.End+align {
		log.Info("growing the data partition", "device", "/dev/"+part, "from_mib", (last.End-last.Start+1)>>11, "to_mib", (end-last.Start+1)>>11)
		t.SetEnd(last.Index, end)
		last.End, grow, change = end, true, true
	}
	if !change {
		return nil
	}
	if err := t.Write(f, sectors); err != nil {
		return err
	}
	if !grow {
		return nil
	}
	// Tell the kernel the partition's new size.
	arg := unix.BlkpgPartition{
		Start:  int64(last.Start) * gpt.SectorSize,
		Length: int64(last.End-last.Start+1) * gpt.SectorSize,
		Pno:    int32(last.Index),
	}
	ioc := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(arg)), Data: (*byte)(unsafe.Pointer(&arg))}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&ioc))); errno != 0 {
		return fmt.Errorf("tell the kernel the new size of /dev/%s: %w (it is used from the next boot)", part, errno)
	}
	return nil
}

// writeMarker writes the empty-data marker for the partition's current
// size at its start, and syncs it.
func writeMarker(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(layout.DataMarker(uint64(size/512)), 0); err != nil {
		return err
	}
	return f.Sync()
}

// zeroAt writes n zero bytes at off of dev and syncs.
func zeroAt(dev string, off int64, n int) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		return err
	}
	return f.Sync()
}

// clearMarker zeroes the marker's sector when it is still there.
func clearMarker(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, layout.DataMarkerSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	if _, ok := layout.ParseDataMarker(b); !ok {
		return nil
	}
	if _, err := f.WriteAt(make([]byte, layout.DataMarkerSize), 0); err != nil {
		return err
	}
	return f.Sync()
}

// ext4ResizeFS is EXT4_IOC_RESIZE_FS: _IOW('f', 16, __u64).
const ext4ResizeFS = 0x40086610

// growFS grows the ext4 on dev, mounted at dir, online to fill its
// partition when it is smaller, through the kernel (EXT4_IOC_RESIZE_FS,
// as resize2fs does for a mounted filesystem). It says whether the
// filesystem grew.
func growFS(dev, dir string) (bool, error) {
	blocks, want, err := ext4Fill(dev)
	if err != nil || want <= blocks {
		return false, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), ext4ResizeFS, uintptr(unsafe.Pointer(&want))); errno != 0 {
		return false, fmt.Errorf("grow the ext4 on %s from %d to %d blocks: %w", dev, blocks, want, errno)
	}
	// The kernel may stop short of want (a last block group too small
	// for its metadata): what counts is what the superblock says now.
	after, _, err := ext4Fill(dev)
	return err == nil && after > blocks, err
}

// ext4Fill reads the block count of the ext4 on dev and how many blocks
// its partition holds.
func ext4Fill(dev string) (blocks, fill uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	head := make([]byte, 2048)
	if _, err := f.ReadAt(head, 0); err != nil {
		return 0, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, 0, err
	}
	blocks, bs, ok := Ext4Blocks(head)
	if !ok {
		return 0, 0, fmt.Errorf("%s holds no ext4 superblock", dev)
	}
	return blocks, uint64(size) / bs, nil
}

// recordIdentity writes the boot disk's GUIDs, as the first boot made
// them, to state/disk on the data partition.
func recordIdentity(log *slog.Logger, disk string) {
	t, err := diskTable(disk)
	if err != nil {
		log.Warn("record the disk's identity", "disk", "/dev/"+disk, "err", err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "disk %s\n", t.DiskGUID())
	for _, p := range t.Partitions() {
		fmt.Fprintf(&b, "partition %d %s %s\n", p.Index, p.GUID, p.Name)
	}
	p := filepath.Join(DataDir, "state", "disk")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		err = os.WriteFile(p, []byte(b.String()), 0o644)
	}
	if err != nil {
		log.Warn("record the disk's identity", "err", err)
	}
}

func partitionDevice(disk string, n int) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("/dev/%sp%d", disk, n)
	}
	return fmt.Sprintf("/dev/%s%d", disk, n)
}
