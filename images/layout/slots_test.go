package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"
)

func TestGRUBConfig(t *testing.T) {
	cfg := GRUBConfig("b", map[string]SlotInfo{
		"a": {Title: "it's $x", Cmdline: `console=ttyS0 quiet x="a b" y=$(reboot);z`, Microcode: true},
		"b": {Title: "new", Cmdline: "quiet"},
	})
	for _, want := range []string{
		`menuentry 'it'\''s $x (slot a)' --id thinhost-a {`,
		`linux /thinhost/a/vmlinuz 'console=ttyS0' 'quiet' 'x="a' 'b"' 'y=$(reboot);z' 'thinhost.slot=a' thinhost.esp=$thinhost_esp`,
		`initrd /thinhost/a/microcode.cpio /thinhost/a/initrd.zst`,
		`menuentry 'new (slot b)' --id thinhost-b {`,
		`linux /thinhost/b/vmlinuz 'quiet' 'thinhost.slot=b' thinhost.esp=$thinhost_esp`,
		`probe --set=thinhost_esp --part-uuid $root`,
		"set thinhost_slot=b\n",
		"load_env --file /thinhost/grubenv thinhost_try thinhost_tries\n",
		"\tif [ \"$thinhost_tries\" = 10 ]; then\n\t\tset thinhost_tries=9\n\t\tset thinhost_slot=\"$thinhost_try\"\n\t\tsave_env --file /thinhost/grubenv thinhost_tries\n",
		"\telif [ \"$thinhost_tries\" = 1 ]; then\n\t\tset thinhost_tries=0\n",
		`set default="thinhost-$thinhost_slot"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("GRUB config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(GRUBConfig("a", map[string]SlotInfo{"a": {Title: "x"}}), "slot b") {
		t.Error("an entry for a slot that holds nothing")
	}
	// GRUB's own parser takes it (grub-common's grub-script-check).
	check := testenv.NeedTool(t, "grub-script-check")
	path := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(check, path).CombinedOutput(); err != nil {
		t.Errorf("grub-script-check: %v\n%s\n%s", err, out, cfg)
	}
}

// TestGRUBEnv: the block is 1024 bytes as grub-editenv writes it and
// reads back.
func TestGRUBEnv(t *testing.T) {
	b := GRUBEnv(map[string]string{GRUBTry: "b", GRUBTries: "3"})
	if len(b) != GRUBEnvSize || !strings.HasPrefix(string(b), "# GRUB Environment Block\nthinhost_try=b\nthinhost_tries=3\n###") {
		t.Errorf("block = %q", b[:64])
	}
	vars, ok := ParseGRUBEnv(b)
	if !ok || vars[GRUBTry] != "b" || vars[GRUBTries] != "3" || len(vars) != 2 {
		t.Errorf("read back: %v %v", vars, ok)
	}
	if vars, ok := ParseGRUBEnv(GRUBEnv(nil)); !ok || len(vars) != 0 {
		t.Errorf("empty block: %v %v", vars, ok)
	}
	if _, ok := ParseGRUBEnv([]byte("# GRUB Environment Block\n")); ok {
		t.Error("a short block read")
	}
	// grub-editenv reads it and writes what we read.
	editenv := testenv.NeedTool(t, "grub-editenv")
	path := filepath.Join(t.TempDir(), "grubenv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(editenv, path, "list").Output(); err != nil || string(out) != "thinhost_try=b\nthinhost_tries=3\n" {
		t.Errorf("grub-editenv list: %q, %v", out, err)
	}
	if err := exec.Command(editenv, path, "set", "thinhost_tries=2").Run(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if vars, ok := ParseGRUBEnv(after); !ok || vars[GRUBTries] != "2" || vars[GRUBTry] != "b" {
		t.Errorf("after grub-editenv set: %v %v", vars, ok)
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
