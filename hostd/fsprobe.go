package hostd

import (
	"encoding/binary"
	"io"
)

// ProbeBytes is how much of a partition's start Probe needs.
const ProbeBytes = 68 << 10

// Probe names the filesystem (or other content) whose signature starts a
// partition, from its first ProbeBytes, or "" when there is none. hostd
// creates a filesystem only where Probe finds nothing, so it knows more
// than ext4: whatever it recognizes, it never formats.
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
