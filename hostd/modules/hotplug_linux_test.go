package modules

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSysModaliases: every device's modalias, from the devices of the
// buses and the classes of a sysfs-like tree (links to the devices, as
// in sysfs), each once, sorted; an empty one and other attributes are
// not read.
func TestSysModaliases(t *testing.T) {
	root := t.TempDir()
	for p, v := range map[string]string{
		"devices/pci0000:00/0000:00:04.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/modalias": "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n",
		"devices/pci0000:00/0000:00:05.0/modalias":                  "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"devices/platform/i8042/serio0/input/input3/modalias":       "input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw\n",
		"devices/platform/empty/modalias":                           "\n",
		"devices/platform/x/uevent":                                 "MODALIAS=not-read-here\n",
		"devices/virtual/hidden/modalias":                           "on:no:bus:nor:class\n",
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte(v), 0o444)
	}
	for link, dev := range map[string]string{
		"bus/pci/devices/0000:00:04.0": "pci0000:00/0000:00:04.0",
		"bus/pci/devices/0000:00:05.0": "pci0000:00/0000:00:05.0",
		"bus/usb/devices/2-1:1.0":      "pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0",
		"bus/platform/devices/empty":   "platform/empty",
		"bus/platform/devices/x":       "platform/x",
		"class/input/input3":           "platform/i8042/serio0/input/input3",
		"class/block/vda":              "pci0000:00/0000:00:05.0",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(link)), 0o755)
		if err := os.Symlink(filepath.Join(root, "devices", dev), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(sysModaliases(root), "\n")
	want := "input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw\npci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\nusb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
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
			"/system/lib/modules/6.1/kernel/snd_hda_intel.ko:\n"+
			"kernel/ext4.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte("alias pci:v00008086d00009A49sv*sd*bc03sc*i* i915\nalias fs-ext4 ext4\n"+
		"alias pci:v00008086d0000A0C8sv*sd*bc*sc*i* snd_hda_intel\n"), 0o644)
	l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	l.sys = t.TempDir() // no devices: only what the test names loads
	var mu sync.Mutex
	var loaded []string
	l.params = ModuleParams("quiet i915.enable_psr=0")
	var i915Params string
	l.insmod = func(p, params string) error {
		mu.Lock()
		defer mu.Unlock()
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
	// Devices asking for drivers of the system image before it is
	// mounted: they load once it is, i915 once although both the profile
	// and its device ask, the sound card's driver for its device alone.
	l.forDevices(ctx, "test", []string{"pci:v00008086d00009A49sv00001028sd00000A2Bbc03sc00i00", "pci:v00008086d0000A0C8sv00001028sd00000A2Bbc04sc03i00"})
	if len(loaded) != 2 {
		t.Errorf("before the system image, devices loaded %v", loaded[2:])
	}
	if n := l.SystemMounted(ctx, []string{"i915", "ext4"}); n != 2 {
		t.Errorf("after the system image: %d loaded, want 2 (i915, snd_hda_intel)", n)
	}
	want := []string{filepath.Join(dir, "kernel/drm.ko"), filepath.Join(dir, "kernel/ext4.ko"), "/system/lib/modules/6.1/kernel/i915.ko", "/system/lib/modules/6.1/kernel/snd_hda_intel.ko"}
	sort.Strings(loaded[:2])
	sort.Strings(loaded[2:])
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

// TestLoadsSideBySide: Load calls from several goroutines (the profile's
// list, coldplug, hotplug) load a shared dependency once, and a module
// of the later call waits for the earlier call's load of it; a failed
// dependency fails its dependents in every call.
func TestLoadsSideBySide(t *testing.T) {
	for _, crcFails := range []bool{false, true} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/crc.ko:\nkernel/a.ko: kernel/crc.ko\nkernel/b.ko: kernel/crc.ko\n"), 0o644)
		l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var loaded []string
		crcStarted, crcGo := make(chan struct{}), make(chan struct{})
		l.insmod = func(p, _ string) error {
			name := strings.TrimSuffix(filepath.Base(p), ".ko")
			if name == "crc" {
				close(crcStarted)
				<-crcGo
				if crcFails {
					return errors.New("bad module")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			loaded = append(loaded, name)
			return nil
		}
		ctx := context.Background()
		type result struct{ loaded, tried int }
		aDone, bDone := make(chan result, 1), make(chan result, 1)
		go func() { n, m := l.Load(ctx, "a", []string{"a"}); aDone <- result{n, m} }()
		<-crcStarted
		go func() { n, m := l.Load(ctx, "b", []string{"b"}); bDone <- result{n, m} }()
		select {
		case r := <-bDone:
			t.Fatalf("Load(b) returned %v while crc, its dependency, was still loading", r)
		case <-time.After(100 * time.Millisecond):
		}
		close(crcGo)
		a, b := <-aDone, <-bDone
		want := "a b crc"
		wantA, wantB := result{2, 2}, result{1, 1}
		if crcFails {
			want, wantA, wantB = "", result{0, 2}, result{0, 1}
		}
		sort.Strings(loaded)
		if got := strings.Join(loaded, " "); got != want {
			t.Errorf("crc fails %v: loaded %q, want %q", crcFails, got, want)
		}
		if a != wantA || b != wantB {
			t.Errorf("crc fails %v: Load(a) = %v, Load(b) = %v; want %v, %v", crcFails, a, b, wantA, wantB)
		}
	}
}

// TestLoadedFilesRemoved: a module's file in the initramfs goes once the
// module loaded (its memory back); loading it again where the file is
// gone (the kernel's modprobe helper, another Loader) succeeds when the
// kernel has the module, and fails when it does not.
func TestLoadedFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/ext4.ko.zst:\nkernel/vfat.ko.zst:\n"), 0o644)
	for _, f := range []string{"ext4", "vfat"} {
		os.MkdirAll(filepath.Join(dir, "kernel"), 0o755)
		os.WriteFile(filepath.Join(dir, "kernel", f+".ko.zst"), []byte("packed"), 0o644)
	}
	newLoader := func() *Loader {
		l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
		if err != nil {
			t.Fatal(err)
		}
		l.sys = t.TempDir()
		l.insmod = func(p, _ string) error {
			_, err := os.Stat(p)
			return err
		}
		return l
	}
	l := newLoader()
	if n, _ := l.Load(context.Background(), "test", []string{"ext4"}); n != 1 {
		t.Fatalf("ext4 did not load")
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel", "ext4.ko.zst")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ext4's file is still there once loaded: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kernel", "vfat.ko.zst")); err != nil {
		t.Errorf("vfat's file, not loaded, went: %v", err)
	}
	helper := newLoader()
	if n, _ := helper.Load(context.Background(), "modprobe", []string{"ext4"}); n != 0 {
		t.Errorf("ext4 loaded again from a file that is gone, the kernel not having it")
	}
	helper = newLoader()
	os.MkdirAll(filepath.Join(helper.sys, "module", "ext4"), 0o755)
	if n, _ := helper.Load(context.Background(), "modprobe", []string{"ext4"}); n != 1 {
		t.Errorf("ext4, which the kernel has, failed to load again once its file went")
	}
}
