package hostd

import (
	"encoding/binary"
	"testing"
)

func TestProbe(t *testing.T) {
	mk := func(off int, sig string) []byte {
		b := make([]byte, ProbeBytes)
		copy(b[off:], sig)
		return b
	}
	ext := make([]byte, ProbeBytes)
	binary.LittleEndian.PutUint16(ext[0x438:], 0xEF53)
	fat := mk(82, "FAT32   ")
	copy(fat[510:], "\x55\xaa")
	for name, c := range map[string]struct {
		head []byte
		want string
	}{
		"zeros":    {make([]byte, ProbeBytes), ""},
		"ext4":     {ext, "ext4"},
		"xfs":      {mk(0, "XFSB"), "xfs"},
		"btrfs":    {mk(0x10040, "_BHRfS_M"), "btrfs"},
		"luks":     {mk(0, "LUKS\xba\xbe"), "crypto_LUKS"},
		"swap":     {mk(4086, "SWAPSPACE2"), "swap"},
		"squashfs": {mk(0, "hsqs"), "squashfs"},
		"ntfs":     {mk(3, "NTFS    "), "ntfs"},
		"vfat":     {fat, "vfat"},
		"short":    {[]byte("XF"), ""},
	} {
		if got := Probe(c.head); got != c.want {
			t.Errorf("%s: Probe = %q, want %q", name, got, c.want)
		}
	}
}
