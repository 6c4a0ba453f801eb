package storage

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
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

// TestExt4Incompat reads the ea_inode flag from filesystems Debian's
// mke2fs made, with and without it, and the one tune2fs turned it on in.
func TestExt4Incompat(t *testing.T) {
	mke2fs := testenv.NeedTool(t, "mke2fs")
	tune2fs := testenv.NeedTool(t, "tune2fs")
	dir := t.TempDir()
	head := func(p string) []byte {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 2048)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return b
	}
	mk := func(name string, opts ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 32<<20); err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"-q", "-F", "-t", "ext4"}, opts...), p)
		if out, err := exec.Command(mke2fs, args...).CombinedOutput(); err != nil {
			t.Fatalf("mke2fs %v: %v\n%s", args, err, out)
		}
		return p
	}
	if blocks, bs, ok := Ext4Blocks(head(mk("size.img"))); !ok || blocks*bs != 32<<20 {
		t.Errorf("Ext4Blocks of a 32 MiB ext4 = %d blocks of %d (%v)", blocks, bs, ok)
	}
	// The UUID hostd chooses for mke2fs, read back before any mount.
	id := [16]byte{0x5e, 0x1f, 0, 1, 2, 3, 0x40, 5, 0x80, 7, 8, 9, 10, 11, 12, 13}
	if got, ok := Ext4UUID(head(mk("uuid.img", "-U", uuidString(id)))); !ok || got != id {
		t.Errorf("Ext4UUID = %x (%v), want %x", got, ok, id)
	}
	if _, ok := Ext4UUID(make([]byte, 2048)); ok {
		t.Error("a UUID read from zeros")
	}
	check := func(what, p string, want bool) {
		t.Helper()
		in, ok := Ext4Incompat(head(p))
		if !ok {
			t.Fatalf("%s: no ext4 superblock read", what)
		}
		if got := in&Ext4EAInode != 0; got != want {
			t.Errorf("%s: ea_inode = %v (incompat %#x), want %v", what, got, in, want)
		}
	}
	plain := mk("plain.img")
	check("mke2fs", plain, false)
	check("mke2fs -O ea_inode", mk("ea.img", "-O", "ea_inode"), true)
	if out, err := exec.Command(tune2fs, "-O", "ea_inode", plain).CombinedOutput(); err != nil {
		t.Fatalf("tune2fs: %v\n%s", err, out)
	}
	check("tune2fs -O ea_inode", plain, true)
	if _, ok := Ext4Incompat(make([]byte, 2048)); ok {
		t.Error("zeros read as ext4")
	}
}
