package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/gpt"
	"github.com/thinhost/thinhost/internal/secureboot"
)

// EfivarsDir is where the kernel shows EFI variables (efivarfs).
const EfivarsDir = "/sys/firmware/efi/efivars"

// EfivarsFS, SystemFS and DataFS are the filesystems (and their
// modules) of the boot loader's variables, of the system image and of
// the data partition.
const EfivarsFS, SystemFS, DataFS = "efivarfs", "squashfs", "ext4"

// loaderPartUUIDVar is systemd-boot's record of the partition it was
// loaded from: the ESP of the disk this host booted from.
const loaderPartUUIDVar = "LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// bootESP is the boot loader's ESP PARTUUID ("" when it did not say),
// read once per boot.
var bootESP = sync.OnceValues(func() (string, error) {
	esp, err := readBootESP(EfivarsDir)
	if esp != "" || err != nil {
		slog.Info("boot disk", "esp_partuuid", esp, "named_by", "systemd-boot (LoaderDevicePartUUID)")
		return esp, err
	}
	// GRUB (the Secure Boot chain) names it on the command line.
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", nil
	}
	esp, err = ESPFromCmdline(string(cmdline))
	if esp != "" {
		slog.Info("boot disk", "esp_partuuid", esp, "named_by", "GRUB ("+layout.ESPArg+"=)")
	}
	return esp, err
})

// BootDiskNamed reports whether the boot loader named the disk this host
// booted from (its ESP's PARTUUID): FindPartition then looks on that
// disk alone, and need not wait for every disk's driver before it
// decides.
func BootDiskNamed() bool {
	esp, err := bootESP()
	return esp != "" && err == nil
}

// ESPFromCmdline reads the ESP's PARTUUID that GRUB puts on the kernel
// command line (layout.ESPArg), or "" when it is not there.
func ESPFromCmdline(cmdline string) (string, error) {
	for _, f := range strings.Fields(cmdline) {
		v, ok := strings.CutPrefix(f, layout.ESPArg+"=")
		if !ok {
			continue
		}
		g := strings.ToUpper(v)
		if !isGUID(g) {
			return "", fmt.Errorf("%s=%q on the kernel command line is not a GUID", layout.ESPArg, v)
		}
		return g, nil
	}
	return "", nil
}

// SecureBootVar is the firmware's SecureBoot variable (EFI global GUID):
// one byte after the attributes, 1 when Secure Boot is enforced.
const SecureBootVar = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

// SecureBootState says whether the firmware booted with Secure Boot on,
// and the kernel's lockdown mode: "on (lockdown: integrity)", "off", or
// "unknown (...)" / "not UEFI".
func SecureBootState() string {
	if _, err := os.Stat(filepath.Dir(EfivarsDir)); err != nil {
		return "not UEFI"
	}
	if err := mountEfivars(EfivarsDir); err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	b, err := os.ReadFile(filepath.Join(EfivarsDir, SecureBootVar))
	if err != nil || len(b) != 5 {
		return fmt.Sprintf("unknown (read %s: %v)", SecureBootVar, err)
	}
	if b[4] != 1 {
		return "off"
	}
	lockdown := "unknown"
	sec := "/sys/kernel/security"
	if _, err := os.Stat(filepath.Join(sec, "lockdown")); err != nil {
		_ = unix.Mount("securityfs", sec, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	if l, err := os.ReadFile("/sys/kernel/security/lockdown"); err == nil {
		// "none [integrity] confidentiality": the bracketed one is on.
		if i, j := strings.IndexByte(string(l), '['), strings.IndexByte(string(l), ']'); i >= 0 && j > i {
			lockdown = string(l[i+1 : j])
		}
	}
	return "on (lockdown: " + lockdown + ")"
}

// mountEfivars mounts efivarfs (read-only) on dir unless something is
// there already.
func mountEfivars(dir string) error {
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return nil
	}
	if err := unix.Mount(EfivarsFS, dir, EfivarsFS, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount efivarfs on %s: %w (is efivarfs among the profile's modules?)", dir, err)
	}
	return nil
}

// readBootESP reads LoaderDevicePartUUID from dir, mounting efivarfs there
// when it is empty. A host not booted through UEFI, or through a loader
// that does not set the variable, gets "".
func readBootESP(dir string) (string, error) {
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		return "", nil // not booted through UEFI
	}
	if err := mountEfivars(dir); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, loaderPartUUIDVar))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the boot loader's LoaderDevicePartUUID: %w", err)
	}
	return ParseLoaderPartUUID(b)
}

// ParseLoaderPartUUID reads an efivarfs file holding LoaderDevicePartUUID:
// 4 bytes of attributes, then the GUID as NUL-terminated UTF-16LE text.
func ParseLoaderPartUUID(b []byte) (string, error) {
	s, err := parseLoaderString("LoaderDevicePartUUID", b)
	if err != nil {
		return "", err
	}
	g := strings.ToUpper(s)
	if !isGUID(g) {
		return "", fmt.Errorf("LoaderDevicePartUUID %q is not a GUID", g)
	}
	return g, nil
}

// parseLoaderString reads an efivarfs file of one of systemd-boot's
// string variables: 4 bytes of attributes, then NUL-terminated UTF-16LE
// text, of which thinhost's variables use ASCII only.
func parseLoaderString(name string, b []byte) (string, error) {
	if len(b) < 4 {
		return "", fmt.Errorf("%s is %d bytes", name, len(b))
	}
	var s []byte
	for i := 4; i+1 < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		if c == 0 {
			break
		}
		if c > 0x7f {
			return "", fmt.Errorf("%s holds a character %U outside ASCII", name, c)
		}
		s = append(s, byte(c))
	}
	return string(s), nil
}

// DBVar is the firmware's db: the certificates it starts programs signed
// by (image security database GUID).
const DBVar = "db-d719b2cb-3d3a-4596-a3bc-dad00e67656f"

// CheckSignedImage refuses the unified kernel image at path when the
// firmware (efivarfs at dir) enforces Secure Boot and no certificate of
// its db verifies the image: the firmware would refuse to start it. With
// Secure Boot off, or no UEFI, it passes: anything boots there.
func CheckSignedImage(dir, path string) error {
	sb, err := os.ReadFile(filepath.Join(dir, SecureBootVar))
	if err != nil || len(sb) != 5 || sb[4] != 1 {
		return nil
	}
	db, err := os.ReadFile(filepath.Join(dir, DBVar))
	if err != nil || len(db) < 4 {
		return fmt.Errorf("the new kernel image cannot be checked against the firmware's db (%v): Secure Boot is on, so it is not installed", err)
	}
	certs, err := secureboot.Certificates(db[4:])
	if err != nil {
		return fmt.Errorf("the firmware's db: %w", err)
	}
	img, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := secureboot.VerifyAny(img, certs); err != nil {
		return fmt.Errorf("the new kernel image is not signed by a key in this laptop's db (%v): Secure Boot would refuse it; build it with the keys this laptop enrolled", err)
	}
	return nil
}

// loaderEntryVar names the loader entry systemd-boot started.
const loaderEntryVar = "LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// BootedSlot is the slot this boot started: the one the kernel command
// line names (thinhost.slot=, which loader entries and GRUB add), else the
// slot of the loader entry systemd-boot started (LoaderEntrySelected,
// read from efivarfs at dir): a unified kernel image carries one command
// line for either slot. "a" when neither says.
func BootedSlot(cmdline, dir string) string {
	if s, ok := layout.CmdlineSlot(cmdline); ok {
		return s
	}
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		return "a" // not booted through UEFI
	}
	if err := mountEfivars(dir); err != nil {
		slog.Warn("booted slot", "err", err)
		return "a"
	}
	b, err := os.ReadFile(filepath.Join(dir, loaderEntryVar))
	if err != nil {
		return "a"
	}
	name, err := parseLoaderString("LoaderEntrySelected", b)
	if err != nil {
		slog.Warn("booted slot", "err", err)
		return "a"
	}
	if e, ok := layout.ParseEntryName(name); ok {
		return e.Slot
	}
	return "a"
}

func isGUID(g string) bool {
	if len(g) != 36 {
		return false
	}
	for i, c := range g {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789ABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// diskSectors is the size of a whole disk (kernel name) in 512-byte
// sectors, as the kernel sees it now.
func diskSectors(disk string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", disk, "size"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// diskTable reads the partition table of a whole disk (kernel name).
func diskTable(disk string) (*gpt.Table, error) {
	sectors, err := diskSectors(disk)
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/dev/" + disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return gpt.Read(f, sectors)
}

// holdsPartition says whether disk's partition table has a partition
// with unique GUID guid.
func holdsPartition(disk, guid string) bool {
	t, err := diskTable(disk)
	if err != nil {
		return false
	}
	for _, p := range t.Partitions() {
		if p.GUID == guid {
			return true
		}
	}
	return false
}

// FindPartition waits for a partition whose GPT name is label on the disk
// this host booted from, and returns its kernel name and its disk's. The
// boot disk is the one holding the ESP the boot loader names; partitions
// of the same name on any other disk (an old thinhost stick, a second
// stick flashed from the same image) are never used. Without the boot
// loader's word, the label must be on exactly one disk.
func FindPartition(ctx context.Context, label string, wait time.Duration) (part, disk string, err error) {
	esp, espErr := bootESP()
	if espErr != nil {
		slog.Warn("which disk booted is unknown", "err", espErr)
	}
	deadline := time.Now().Add(wait)
	for {
		// Once found, the boot disk is known by its name: its first boot
		// gives its partitions fresh GUIDs, after which the loader's
		// PARTUUID names none of them.
		if known := knownBootDisk(); known != "" {
			if p, ok := partitionOn(known, label); ok {
				return p, known, nil
			}
			if time.Now().After(deadline) {
				return "", "", fmt.Errorf("no partition named %q on the disk this host booted from (%s)", label, known)
			}
			select {
			case <-ctx.Done():
				return "", "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		found := map[string]string{} // disk -> partition
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
			found[filepath.Base(filepath.Dir(real))] = e.Name()
		}
		var others, boot []string
		for d, p := range found {
			if esp != "" && holdsPartition(d, esp) {
				boot = append(boot, d)
				continue
			}
			others = append(others, "/dev/"+p)
		}
		sort.Strings(others)
		sort.Strings(boot)
		switch {
		case len(boot) == 1:
			setBootDisk(boot[0])
			return found[boot[0]], boot[0], nil
		case len(boot) > 1:
			// Sticks flashed from one image and never booted share their
			// GUIDs until the first boot gives them their own.
			return "", "", fmt.Errorf("disks %s all hold the partition the boot loader names (%s): sticks flashed from one image that never booted; hostd uses none of them: unplug all but the one to boot", strings.Join(boot, ", "), esp)
		}
		if esp == "" && len(found) == 1 {
			for d, p := range found {
				setBootDisk(d)
				return p, d, nil
			}
		}
		if esp == "" && len(found) > 1 {
			return "", "", fmt.Errorf("partitions named %q on several disks (%s) and the boot loader did not say which disk booted: hostd uses none of them; unplug the other thinhost disks", label, strings.Join(others, ", "))
		}
		if time.Now().After(deadline) {
			if len(others) > 0 {
				return "", "", fmt.Errorf("no partition named %q appeared within %s on the disk this host booted from (the one holding partition %s); %s, on another disk, is left untouched", label, wait, esp, strings.Join(others, ", "))
			}
			return "", "", fmt.Errorf("no partition named %q appeared within %s (is the disk's driver among the profile's modules?)", label, wait)
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bootDisk is the kernel name of the disk this host booted from, once
// FindPartition found it.
var (
	bootDiskMu   sync.Mutex
	bootDiskName string
)

func knownBootDisk() string {
	bootDiskMu.Lock()
	defer bootDiskMu.Unlock()
	return bootDiskName
}

func setBootDisk(disk string) {
	bootDiskMu.Lock()
	defer bootDiskMu.Unlock()
	if bootDiskName == "" {
		bootDiskName = disk
		slog.Info("boot disk found", "disk", "/dev/"+disk)
	}
}

// partitionOn is the partition named label on disk (kernel names).
func partitionOn(disk, label string) (string, bool) {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/block", disk))
	for _, e := range entries {
		ue, err := os.ReadFile(filepath.Join("/sys/class/block", disk, e.Name(), "uevent"))
		if err == nil && strings.Contains(string(ue), "\nPARTNAME="+label+"\n") {
			return e.Name(), true
		}
	}
	return "", false
}

// BootDiskUSB is the USB vendor:product of the device holding the boot
// disk, when it is on USB (the stick the host booted from).
func BootDiskUSB() (string, bool) {
	_, id, ok := BootUSB()
	return id, ok
}

// BootUSB is the USB device holding the boot disk: its kernel device path
// (DEVPATH, as uevents name it: /devices/...) and "vvvv:pppp".
func BootUSB() (devpath, id string, ok bool) {
	_, disk, err := FindPartition(context.Background(), layout.ESPName, 0)
	if err != nil {
		return "", "", false
	}
	real, err := filepath.EvalSymlinks(filepath.Join("/sys/block", disk))
	if err != nil {
		return "", "", false
	}
	dir, id, ok := USBDeviceOf(real)
	return strings.TrimPrefix(dir, "/sys"), id, ok
}

// USBIDOf walks up a sysfs device path to the USB device it hangs off
// and returns its "vvvv:pppp", or false when it is not on USB.
func USBIDOf(dev string) (string, bool) {
	_, id, ok := USBDeviceOf(dev)
	return id, ok
}

// USBDeviceOf walks up a sysfs device path to the USB device it hangs off
// and returns that device's directory and "vvvv:pppp".
func USBDeviceOf(dev string) (dir, id string, ok bool) {
	for d := dev; d != "/" && d != "." && strings.HasPrefix(d, "/"); d = filepath.Dir(d) {
		v, err1 := os.ReadFile(filepath.Join(d, "idVendor"))
		p, err2 := os.ReadFile(filepath.Join(d, "idProduct"))
		if err1 == nil && err2 == nil {
			return d, strings.ToLower(strings.TrimSpace(string(v)) + ":" + strings.TrimSpace(string(p))), true
		}
	}
	return "", "", false
}
