package layout

import (
	"strings"
	"testing"
)

func TestGRUBConfig(t *testing.T) {
	cfg := GRUBConfig("a", SlotInfo{Title: "it's $x", Cmdline: `console=ttyS0 quiet x="a b" y=$(reboot);z`, Microcode: true})
	for _, want := range []string{
		`menuentry 'it'\''s $x (slot a)' {`,
		`linux /thinhost/a/vmlinuz 'console=ttyS0' 'quiet' 'x="a' 'b"' 'y=$(reboot);z' 'thinhost.slot=a' thinhost.esp=$thinhost_esp`,
		`initrd /thinhost/a/microcode.cpio /thinhost/a/initrd.zst`,
		`probe --set=thinhost_esp --part-uuid $root`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("GRUB config lacks %q:\n%s", want, cfg)
		}
	}
}

// TestSystemdBootEntry: the entry boots its own slot's files, the
// microcode first, and says which slot it is; its version orders it.
func TestSystemdBootEntry(t *testing.T) {
	e := SystemdBootEntry("b", SlotInfo{Title: "thinhost x", Cmdline: "console=ttyS0 quiet", Microcode: true}, 7)
	want := "title thinhost x (slot b)\nsort-key thinhost\nversion 7\nlinux /thinhost/b/vmlinuz\n" +
		"initrd /thinhost/b/microcode.cpio\ninitrd /thinhost/b/initrd.zst\noptions console=ttyS0 quiet thinhost.slot=b\n"
	if e != want {
		t.Errorf("entry:\n%s\nwant:\n%s", e, want)
	}
	if v := EntryVersion(e); v != 7 {
		t.Errorf("EntryVersion = %d", v)
	}
	if v := EntryVersion("title old\nlinux /x\n"); v != 0 {
		t.Errorf("EntryVersion of an entry without one = %d", v)
	}
	if s := SlotFromCmdline("quiet thinhost.slot=b x"); s != "b" {
		t.Errorf("slot = %q", s)
	}
	for _, c := range []string{"quiet", "thinhost.slot=c", "thinhost.slot="} {
		if s := SlotFromCmdline(c); s != "a" {
			t.Errorf("slot of %q = %q, want a", c, s)
		}
	}
}

// TestEntryName: the names systemd-boot's boot counting gives an entry
// round-trip, and others are not ours.
func TestEntryName(t *testing.T) {
	for _, c := range []struct {
		name string
		want Entry
	}{
		{"thinhost-a.conf", Entry{Slot: "a"}},
		{"thinhost-b+3.conf", Entry{Slot: "b", Counting: true, TriesLeft: 3}},
		{"thinhost-b+2-1.conf", Entry{Slot: "b", Counting: true, TriesLeft: 2, TriesDone: 1}},
		{"THINHOST-B+0-3.CONF", Entry{Slot: "b", Counting: true, TriesDone: 3}},
	} {
		got, ok := ParseEntryName(c.name)
		if !ok || got != c.want {
			t.Errorf("ParseEntryName(%q) = %+v, %v; want %+v", c.name, got, ok, c.want)
		}
	}
	for _, bad := range []string{"thinhost-c.conf", "thinhost-a+.conf", "other.conf", "thinhost-a.conf.tmp", "thinhost-a+1-.conf"} {
		if _, ok := ParseEntryName(bad); ok {
			t.Errorf("ParseEntryName(%q) accepted", bad)
		}
	}
	if n := EntryName("b", 3); n != "thinhost-b+3.conf" {
		t.Error(n)
	}
	if n := EntryName("a", -1); n != "thinhost-a.conf" {
		t.Error(n)
	}
}
