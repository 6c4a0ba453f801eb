package storage

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ProbeBytes is how much of a partition's start Probe needs.
const ProbeBytes = 68 << 10

// Probe names the filesystem (or other content) whose signature starts a
// partition, from its first ProbeBytes, or "" when there is none. hostd
// mounts what Probe calls ext4; for anything else it names, it says what
// it found when it leaves the partition alone (JudgeBlank decides what
// hostd may format, and nothing Probe names is blank).
func Probe(head []byte) string {
	at := func(off int, sig string) bool {
		return len(head) >= off+len(sig) && string(head[off:off+len(sig)]) == sig
	}
	switch {
	case len(head) >= 0x43A && binary.LittleEndian.Uint16(head[0x438:]) == 0xEF53:
		return "ext4" // ext2/3/4 share the magic; thinhost makes ext4
	case at(0, "XFSB"):
		return "xfs"
	case at(0x10040, "_BHRfS_M"):
		return "btrfs"
	case at(0, "LUKS\xba\xbe"):
		return "crypto_LUKS"
	case at(4086, "SWAPSPACE2"), at(4086, "SWAP-SPACE"):
		return "swap"
	case at(0, "hsqs"):
		return "squashfs"
	case at(3, "NTFS    "):
		return "ntfs"
	case at(3, "EXFAT   "):
		return "exfat"
	case at(510, "\x55\xaa") && (at(54, "FAT") || at(82, "FAT32")):
		return "vfat"
	case at(0x8001, "CD001"):
		return "iso9660"
	case at(3, "-FVE-FS-"):
		return "BitLocker"
	case at(512+24, "LVM2 001"), at(1024+24, "LVM2 001"):
		return "an LVM2 physical volume"
	case at(4096, "\xfc\x4e\x2b\xa9"), at(0, "\xfc\x4e\x2b\xa9"):
		return "a Linux RAID member"
	case at(1024, "\x10\x20\xf5\xf2"):
		return "f2fs"
	case at(3, "ReFS"):
		return "ReFS"
	case at(1024, "H+"), at(1024, "HX"):
		return "HFS+"
	case at(32, "NXSB"):
		return "APFS"
	}
	return ""
}

// probeReader reads the head of r and probes it.
func probeReader(r io.ReaderAt) (string, error) {
	head := make([]byte, ProbeBytes)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	return Probe(head[:n]), nil
}

// Ext4EAInode is ext4's ea_inode feature (an INCOMPAT flag): an extended
// attribute's value may fill an inode of its own, up to 64 KiB, instead of
// sharing one 4 KiB block with the file's other attributes. Samba keeps
// alternate data streams in xattrs, so without it a stream over about
// 4 KiB fails with "disk full".
const Ext4EAInode = 0x400

// Ext4Incompat is the INCOMPAT feature flags of the ext2/3/4 superblock
// that head starts with, and false when head holds none.
func Ext4Incompat(head []byte) (uint32, bool) {
	// The superblock starts 1024 bytes in; its magic is at 0x38 and
	// s_feature_incompat at 0x60.
	if Probe(head) != "ext4" || len(head) < 1024+0x64 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(head[1024+0x60:]), true
}

// Ext4Blocks is the block count and block size of the ext2/3/4 superblock
// that head starts with, and false when head holds none.
func Ext4Blocks(head []byte) (blocks, blockSize uint64, ok bool) {
	const sb = 1024
	if Probe(head) != "ext4" || len(head) < sb+0x154 {
		return 0, 0, false
	}
	le := binary.LittleEndian
	logSize := le.Uint32(head[sb+0x18:])
	if logSize > 6 { // 64 KiB blocks at most
		return 0, 0, false
	}
	blocks = uint64(le.Uint32(head[sb+0x04:]))
	if le.Uint32(head[sb+0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(le.Uint32(head[sb+0x150:])) << 32
	}
	return blocks, 1024 << logSize, true
}

// Ext4UUID is the UUID of the ext4 whose first bytes head holds (2 KiB
// suffice): mke2fs chooses it, and it stays the filesystem's for its
// life. It is known before the filesystem is checked or mounted.
func Ext4UUID(head []byte) (id [16]byte, ok bool) {
	const sb = 1024
	if Probe(head) != "ext4" || len(head) < sb+0x78 {
		return id, false
	}
	copy(id[:], head[sb+0x68:sb+0x78])
	return id, id != [16]byte{}
}

// uuidString is id as mke2fs -U takes it.
func uuidString(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}
