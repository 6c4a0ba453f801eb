package modules

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestSysModaliases: every device's modalias under a sysfs-like tree,
// each once, sorted; links are not followed (sysfs is full of them).
func TestSysModaliases(t *testing.T) {
	root := t.TempDir()
	for p, v := range map[string]string{
		"pci0000:00/0000:00:04.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/modalias": "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n",
		"pci0000:00/0000:00:05.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"platform/empty/modalias":                           "\n",
		"platform/x/uevent":                                 "MODALIAS=not-read-here\n",
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte(v), 0o444)
	}
	os.Symlink(filepath.Join(root, "pci0000:00"), filepath.Join(root, "platform", "loop"))
	got := strings.Join(sysModaliases(root), "\n")
	want := "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\nusb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
	if got != want {
		t.Errorf("modaliases:\n%s\nwant\n%s", got, want)
	}
}

// TestLateModules: modules of the system image (absolute paths in
// modules.dep) wait until it is mounted, then load from there; the
// modprobe helper finds modules by name and by alias.
func TestLateModules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/drm.ko:\n"+
			"/system/lib/modules/6.1/kernel/i915.ko: kernel/drm.ko\n"+
			"kernel/ext4.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte("alias pci:v00008086d00009A49sv*sd*bc03sc*i* i915\nalias fs-ext4 ext4\n"), 0o644)
	l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	l.sysDevices = t.TempDir() // no devices: only what the test names loads
	var loaded []string
	l.params = ModuleParams("quiet i915.enable_psr=0")
	var i915Params string
	l.insmod = func(p, params string) error {
		loaded = append(loaded, p)
		if strings.HasSuffix(p, "/i915.ko") {
			i915Params = params
		} else if params != "" {
			t.Errorf("%s loaded with %q", p, params)
		}
		return nil
	}
	ctx := context.Background()
	if n, _ := l.Load(ctx, "test", []string{"i915", "ext4"}); n != 2 {
		t.Errorf("before the system image: %d loaded, want 2 (drm and ext4; i915 waits)", n)
	}
	l.forDevices(ctx, "test", []string{"pci:v00008086d00009A49sv00001028sd00000A2Bbc03sc00i00"})
	if n := l.SystemMounted(ctx, []string{"i915", "ext4"}); n != 1 {
		t.Errorf("after the system image: %d loaded, want 1 (i915)", n)
	}
	want := []string{filepath.Join(dir, "kernel/drm.ko"), filepath.Join(dir, "kernel/ext4.ko"), "/system/lib/modules/6.1/kernel/i915.ko"}
	sort.Strings(loaded[:2])
	if strings.Join(loaded, " ") != strings.Join(want, " ") {
		t.Errorf("loaded %v, want %v", loaded, want)
	}
	if i915Params != "enable_psr=0" {
		t.Errorf("i915 loaded with %q, want the command line's enable_psr=0", i915Params)
	}
	for name, want := range map[string]string{"i915": "i915", "fs-ext4": "ext4", "pci:v00008086d00009A49sv00001028sd00000A2Bbc03sc00i00": "i915", "nope": ""} {
		if got := strings.Join(l.resolve(name), ","); got != want {
			t.Errorf("resolve(%q) = %q, want %q", name, got, want)
		}
	}
}
