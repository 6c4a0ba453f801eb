package hostd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images/gpt"
	"github.com/thinhost/thinhost/images/layout"
)

// DataDir is where the data partition is mounted.
const DataDir = "/data"

// DataDirs are created on the data partition.
var DataDirs = []string{"vms", "shares", "state", "logs"}

// Programs hostd runs for the data partition, from the system image.
const (
	mke2fs   = "/sbin/mke2fs"
	e2fsck   = "/sbin/e2fsck"
	resize2f = "/sbin/resize2fs"
	tune2fs  = "/sbin/tune2fs"
)

// DataStatus is what hostd knows of the data partition.
type DataStatus struct {
	Device string `json:"device"`
	// Size and Free are the filesystem's, in bytes.
	Size int64 `json:"size"`
	Free int64 `json:"free"`
	// Created, Grown and Repaired say what this boot did.
	Created  bool `json:"created,omitempty"`
	Grown    bool `json:"grown,omitempty"`
	Repaired bool `json:"repaired,omitempty"`
	Mounted  bool `json:"mounted"`
	// Boot counts the boots that mounted this data partition.
	Boot int `json:"boot,omitempty"`
	// Problem is set when the data partition is not usable; hostd comes up
	// without it and says so.
	Problem string `json:"problem,omitempty"`
}

// Line is the console summary.
func (s *DataStatus) Line() string {
	if s.Problem != "" {
		return fmt.Sprintf("thinhost: data partition NOT MOUNTED: %s", s.Problem)
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
	return fmt.Sprintf("thinhost: data %s on %s: %d MiB, %d MiB free, boot %d%s",
		DataDir, s.Device, s.Size>>20, s.Free>>20, s.Boot, extra)
}

// setupData finds the data partition by its label, grows it into free
// space after it, creates ext4 on it when it holds no filesystem at all,
// checks it when it does, and mounts it. It never formats a partition
// that holds a filesystem, and leaves a filesystem it cannot repair
// untouched.
func setupData(ctx context.Context, log *slog.Logger) *DataStatus {
	st := &DataStatus{}
	fail := func(format string, a ...any) *DataStatus {
		st.Problem = fmt.Sprintf(format, a...)
		log.Error("data partition", "problem", st.Problem)
		return st
	}
	part, disk, err := findPartition(ctx, layout.DataName, 10*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	st.Device = "/dev/" + part

	f, err := os.Open(st.Device)
	if err != nil {
		return fail("open %s: %v", st.Device, err)
	}
	fs, err := probeReader(f)
	f.Close()
	if err != nil {
		return fail("read %s: %v", st.Device, err)
	}
	// Grow only what hostd manages: a foreign filesystem keeps even its
	// partition's size.
	grown := false
	if fs == "" || fs == "ext4" {
		if grown, err = growLast(log, disk, part); err != nil {
			log.Warn("grow data partition", "device", st.Device, "err", err)
		}
	}
	if fs == "" || fs == "ext4" {
		if _, err := os.Stat(systemLoader); err != nil {
			return fail("the system image is not mounted on %s, so hostd has no mke2fs or e2fsck to set up %s; see the console above for why, and rebuild the image with this thinhost", SystemDir, st.Device)
		}
	}
	switch fs {
	case "":
		log.Info("creating ext4 on the empty data partition", "device", st.Device)
		// ea_inode: the shares' alternate data streams up to 64 KiB.
		if out, err := systemCommand(ctx, mke2fs, "-q", "-t", "ext4", "-O", "ea_inode", "-L", layout.DataName, "-m", "1", st.Device).CombinedOutput(); err != nil {
			return fail("create ext4 on %s: %v: %s", st.Device, err, strings.TrimSpace(string(out)))
		}
		st.Created = true
	case "ext4":
		out, err := systemCommand(ctx, e2fsck, "-p", st.Device).CombinedOutput()
		code := exitCode(err)
		switch {
		case code == 0:
		case code == 1 || code == 2:
			st.Repaired = true
			log.Warn("data partition repaired", "device", st.Device, "e2fsck", strings.TrimSpace(string(out)))
		default:
			return fail("e2fsck %s found errors it cannot repair (exit %d); the partition is left untouched: %s", st.Device, code, strings.TrimSpace(string(out)))
		}
		enableEAInode(ctx, log, st.Device)
	default:
		return fail("%s holds %s, not ext4; hostd never formats a partition that holds a filesystem: back it up and wipe it (or restore the ext4 one) to use it", st.Device, fs)
	}

	if err := os.MkdirAll(DataDir, 0o755); err != nil {
		return fail("create %s: %v", DataDir, err)
	}
	if err := unix.Mount(st.Device, DataDir, "ext4", unix.MS_NOATIME|unix.MS_NODEV, ""); err != nil {
		return fail("mount %s on %s: %v", st.Device, DataDir, err)
	}
	st.Mounted = true
	if grown || st.Created {
		// Online: ext4 grows while mounted, without the full check an
		// offline resize2fs insists on.
		if out, err := systemCommand(ctx, resize2f, st.Device).CombinedOutput(); err != nil {
			log.Warn("grow the data filesystem", "device", st.Device, "err", err, "output", strings.TrimSpace(string(out)))
		} else if grown {
			st.Grown = true
		}
	}
	for _, d := range DataDirs {
		if err := os.MkdirAll(filepath.Join(DataDir, d), 0o755); err != nil {
			log.Warn("create data directory", "dir", d, "err", err)
		}
	}
	st.Boot = countBoot(log)
	var fsst unix.Statfs_t
	if err := unix.Statfs(DataDir, &fsst); err == nil {
		st.Size = int64(fsst.Blocks) * fsst.Bsize
		st.Free = int64(fsst.Bavail) * fsst.Bsize
	}
	return st
}

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
	if out, err := systemCommand(ctx, tune2fs, "-O", "ea_inode", dev).CombinedOutput(); err != nil {
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

// unmountData syncs and unmounts the data partition.
func unmountData(log *slog.Logger) {
	unix.Sync()
	if err := unix.Unmount(DataDir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		log.Warn("unmount data partition", "dir", DataDir, "err", err)
		return
	}
	log.Info("data partition unmounted", "dir", DataDir)
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

// findPartition waits for a partition whose GPT name is label and returns
// its kernel name and its disk's.
func findPartition(ctx context.Context, label string, wait time.Duration) (part, disk string, err error) {
	deadline := time.Now().Add(wait)
	for {
		entries, _ := os.ReadDir("/sys/class/block")
		for _, e := range entries {
			ue, err := os.ReadFile(filepath.Join("/sys/class/block", e.Name(), "uevent"))
			if err != nil || !strings.Contains(string(ue), "\nPARTNAME="+label+"\n") {
				continue
			}
			real, err := filepath.EvalSymlinks(filepath.Join("/sys/class/block", e.Name()))
			if err != nil {
				continue
			}
			return e.Name(), filepath.Base(filepath.Dir(real)), nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("no partition named %q appeared within %s (is the disk's driver among the profile's modules?)", label, wait)
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// growLast grows part, when it is the disk's last partition, to the end of
// the disk (1 MiB aligned), moving the backup GPT to the disk's end. It
// returns whether it grew the partition.
func growLast(log *slog.Logger, disk, part string) (bool, error) {
	sizeB, err := os.ReadFile(filepath.Join("/sys/block", disk, "size"))
	if err != nil {
		return false, err
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(sizeB)), 10, 64)
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile("/dev/"+disk, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	t, err := gpt.Read(f)
	if err != nil {
		return false, fmt.Errorf("read the partition table of /dev/%s: %w", disk, err)
	}
	parts := t.Partitions()
	last := parts[len(parts)-1]
	if "/dev/"+part != partitionDevice(disk, last.Index) {
		return false, fmt.Errorf("/dev/%s is not the last partition of /dev/%s", part, disk)
	}
	const align = 2048 // 1 MiB in sectors
	t.Resize(sectors)
	end := (t.LastUsable()+1)/align*align - 1
	if end <= last.End+align {
		return false, nil // less than a MiB to gain
	}
	log.Info("growing the data partition", "device", "/dev/"+part, "from_mib", (last.End-last.Start+1)>>11, "to_mib", (end-last.Start+1)>>11)
	t.SetEnd(last.Index, end)
	if err := t.Write(f, sectors); err != nil {
		return false, err
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	// Tell the kernel the partition's new size.
	arg := unix.BlkpgPartition{
		Start:  int64(last.Start) * gpt.SectorSize,
		Length: int64(end-last.Start+1) * gpt.SectorSize,
		Pno:    int32(last.Index),
	}
	ioc := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(arg)), Data: (*byte)(unsafe.Pointer(&arg))}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&ioc))); errno != 0 {
		return true, fmt.Errorf("tell the kernel the new size of /dev/%s: %w (it is used from the next boot)", part, errno)
	}
	return true, nil
}

func partitionDevice(disk string, n int) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("/dev/%sp%d", disk, n)
	}
	return fmt.Sprintf("/dev/%s%d", disk, n)
}
