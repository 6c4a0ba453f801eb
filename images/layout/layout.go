// Package layout holds the disk layout contract shared by the image writer
// (images/) and the host daemon (hostd/): partition names and types, and
// where the boot files live on the ESP. It has no dependencies, so hostd can
// import it without pulling in the builder.
package layout

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// GPT partition names (PARTLABEL). hostd finds partitions by these names,
// never by number, so the layout can gain partitions later.
const (
	ESPName     = "thinhost-esp"
	SystemAName = "thinhost-system-a"
	SystemBName = "thinhost-system-b"
	DataName    = "thinhost-data"
)

// SystemDir is where hostd mounts the system image (system slot A); the
// builder writes paths under it into hostd's config.
const SystemDir = "/system"

// Partition type GUIDs.
const (
	// TypeESP is the EFI system partition.
	TypeESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// TypeSystem is the Discoverable Partitions Specification's "/usr
	// partition (x86-64)": the system slots hold a read-only tree of
	// programs, which is what /usr is.
	TypeSystem = "8484680C-9521-48C6-9C11-B0720656F69E"
	// TypeData is a generic Linux filesystem.
	TypeData = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	// TypeMedia is a raw partition holding a guest's install or driver
	// ISO ("Linux reserved": no tool should mount or touch it).
	TypeMedia = "8DA63339-0007-60C0-C436-083AC8230908"
)

// MediaName is the PARTLABEL of a guest's media partition; kind is
// "install" or "drivers". GPT names hold 36 characters, which limits VM
// names to 16.
func MediaName(vm, kind string) string { return "thinhost-" + vm + "-" + kind }

// MediaDevice is where hostd makes a media partition appear.
func MediaDevice(vm, kind string) string { return "/dev/disk/by-partlabel/" + MediaName(vm, kind) }

// ESPVolumeLabel is the FAT volume label of the ESP.
const ESPVolumeLabel = "THINHOST"

// Files on the ESP. A build writes slot "a"; updates alternate between the
// slots (slots.go).
const (
	BootloaderPath = "EFI/BOOT/BOOTX64.EFI"
	LoaderConfPath = "loader/loader.conf"
)

// The Secure Boot chain's files on the ESP: shim as the removable-media
// loader, GRUB beside it (shim loads grubx64.efi from its own directory),
// and the configuration where Debian's signed GRUB looks for it (its
// built-in prefix is /EFI/debian on the device it was loaded from).
const (
	ShimGRUBPath   = "EFI/BOOT/grubx64.efi"
	GRUBConfigPath = "EFI/debian/grub.cfg"
)

// ESPArg is the kernel command line parameter through which GRUB names
// the ESP it booted from (its PARTUUID); systemd-boot sets the EFI
// variable LoaderDevicePartUUID instead.
const ESPArg = "thinhost.esp"

// EntryPath is the systemd-boot loader entry of a slot that booted well
// (slots.go).
func EntryPath(slot string) string { return EntryDir + "/" + EntryName(slot, -1) }

// KernelPath and InitrdPath are a slot's boot files on the ESP.
func KernelPath(slot string) string { return "thinhost/" + slot + "/vmlinuz" }

// InitrdPath is the slot's initramfs on the ESP.
func InitrdPath(slot string) string { return "thinhost/" + slot + "/initrd.zst" }

// MicrocodePath is the slot's early microcode initrd on the ESP.
func MicrocodePath(slot string) string { return "thinhost/" + slot + "/microcode.cpio" }

// UKIPath is the slot's unified kernel image on the ESP (the own-keys
// chain, LoaderUKI): kernel, initrds and command line in one signed file,
// in place of KernelPath, InitrdPath and MicrocodePath.
func UKIPath(slot string) string { return "thinhost/" + slot + "/linux.efi" }

// EnrollKeysDir holds the own-keys chain's enrollment files (PK.auth,
// KEK.auth, db.auth): systemd-boot enrolls them when the firmware is in
// setup mode ("auto" with secure-boot-enroll force), then restarts.
const EnrollKeysDir = "loader/keys/auto"

// EnrollHowToPath is the own-keys chain's how-to on the ESP.
const EnrollHowToPath = "loader/keys/README.txt"

// The empty-data marker. The image writer puts it in the first sector of
// the data partition and leaves the rest of the partition empty; hostd
// creates a filesystem on a partition only where it finds the marker with
// the rest of the partition's first MiB, and the last MiB of the extent
// the marker records, still empty (or, for partitions from images written
// before the marker, where the first and last MiB are all zeros). Anything
// else there is someone's data, and hostd leaves it untouched.
//
// The marker's sector: DataMarkerMagic, the partition's size in sectors
// when the marker was written (uint64, little-endian), and a CRC-32 (IEEE)
// of both; the rest zeros.
const DataMarkerMagic = "THINHOST EMPTY DATA PARTITION v1"

// DataMarkerSize is the marker's length: one 512-byte sector.
const DataMarkerSize = 512

// DataMarker returns the marker for a data partition of sectors sectors.
func DataMarker(sectors uint64) []byte {
	b := make([]byte, DataMarkerSize)
	n := copy(b, DataMarkerMagic)
	binary.LittleEndian.PutUint64(b[n:], sectors)
	binary.LittleEndian.PutUint32(b[n+8:], crc32.ChecksumIEEE(b[:n+8]))
	return b
}

// ParseDataMarker returns the size recorded in the marker that b starts
// with, and false when b holds no valid marker (or anything after it in
// the sector).
func ParseDataMarker(b []byte) (sectors uint64, ok bool) {
	n := len(DataMarkerMagic)
	if len(b) < DataMarkerSize || string(b[:n]) != DataMarkerMagic ||
		binary.LittleEndian.Uint32(b[n+8:]) != crc32.ChecksumIEEE(b[:n+8]) {
		return 0, false
	}
	for _, c := range b[n+12 : DataMarkerSize] {
		if c != 0 {
			return 0, false
		}
	}
	return binary.LittleEndian.Uint64(b[n:]), true
}

// First-boot secrets. Secrets of the profile that hostd needs in clear
// (Wi-Fi passphrases) never go into the boot files or the system image,
// which anyone holding the stick reads. The image writer leaves them in
// the empty data partition, right after the marker; hostd reads them
// once, zeroes them before it creates the filesystem (or LUKS2) there,
// and keeps them on the new filesystem — encrypted when the profile
// encrypts it. A stick never booted holds them; one booted, no more.
//
// The record: FirstBootMagic, the payload's length (uint32, little-endian)
// and its CRC-32 (IEEE), then the payload (config.FirstBoot as JSON), the
// rest of its last sector zeros; at most FirstBootMax bytes in all.
const (
	FirstBootMagic = "THINHOST FIRST-BOOT SECRETS v1\x00\x00"
	FirstBootMax   = 64 << 10
)

// FirstBootRecord is the record for payload, whole sectors long.
func FirstBootRecord(payload []byte) ([]byte, error) {
	n := len(FirstBootMagic) + 8 + len(payload)
	if n > FirstBootMax {
		return nil, fmt.Errorf("the first-boot secrets take %d bytes, more than %d", n, FirstBootMax)
	}
	b := make([]byte, (n+DataMarkerSize-1)/DataMarkerSize*DataMarkerSize)
	k := copy(b, FirstBootMagic)
	binary.LittleEndian.PutUint32(b[k:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[k+4:], crc32.ChecksumIEEE(payload))
	copy(b[k+8:], payload)
	return b, nil
}

// ParseFirstBoot reads the record b starts with: its payload and the
// bytes it spans (whole sectors); ok is false when there is none, or it
// is damaged, or anything but zeros follows the payload in its last
// sector.
func ParseFirstBoot(b []byte) (payload []byte, span int, ok bool) {
	k := len(FirstBootMagic)
	if len(b) < k+8 || string(b[:k]) != FirstBootMagic {
		return nil, 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[k:]))
	if n > FirstBootMax-k-8 || k+8+n > len(b) {
		return nil, 0, false
	}
	payload = b[k+8 : k+8+n]
	if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(b[k+4:]) {
		return nil, 0, false
	}
	span = (k + 8 + n + DataMarkerSize - 1) / DataMarkerSize * DataMarkerSize
	if span > len(b) {
		return nil, 0, false
	}
	for _, c := range b[k+8+n : span] {
		if c != 0 {
			return nil, 0, false
		}
	}
	return payload, span, true
}

// LoaderConfEnroll is added to loader.conf by the own-keys chain: with the
// firmware in setup mode (its keys cleared in its setup screen),
// systemd-boot enrolls EnrollKeysDir's keys and restarts. On a laptop it
// first counts down 15 seconds, during which any key aborts; in a virtual
// machine it enrolls at once. Outside setup mode it does nothing.
const LoaderConfEnroll = "secure-boot-enroll force\n"

// LoaderConfFor is loader.conf for a boot chain's systemd-boot.
func LoaderConfFor(loader string) string {
	if loader == LoaderUKI {
		return LoaderConf + LoaderConfEnroll
	}
	return LoaderConf
}

// EnrollHowTo is the own-keys chain's how-to, on the ESP beside the keys.
const EnrollHowTo = `thinhost: Secure Boot with your own keys
==========================================

The loader (EFI/BOOT/BOOTX64.EFI) and the host's kernel image
(thinhost/*/linux.efi) on this stick are signed with your db key. Your
laptop boots them with Secure Boot on once its firmware holds your keys:

1. Enter the firmware setup (F2, F10, F12, Del or Esc at power-on),
   find Secure Boot, and choose "Reset to Setup Mode" (also called
   "Clear Secure Boot keys" or "Delete all keys"). Keep Secure Boot
   enabled. Save and restart from this stick.
2. The loader finds the firmware in setup mode and enrolls the keys in
   loader/keys/auto (db, then KEK, then PK) after a 15-second countdown
   (any key aborts), then restarts. From then on the firmware starts only
   what your keys signed.

Firmware whose setup screen imports keys itself: use the .cer files
(DER certificates) or the .auth files of loader/keys/auto, db first.

Careful: enrolling replaces the keys the laptop shipped with, Microsoft's
among them. Some laptops' graphics or storage firmware is signed only by
Microsoft and does not start without its key; with such a laptop, a black
screen after enrolling is undone by resetting the keys to factory
defaults in the firmware setup. Windows runs inside the host with its own
firmware and keys and is not affected.
`
