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

// TestSysModaliases: every device's modalias from its uevent (MODALIAS=),
// for the devices of the buses and the classes of a sysfs-like tree
// (links to the devices, as in sysfs), each once, sorted: a CPU's too,
// which has no modalias attribute; an empty one, a uevent without one
// and the modalias attribute itself are not read.
func TestSysModaliases(t *testing.T) {
	root := t.TempDir()
	const cpu = "cpu:type:x86,ven0000fam0006mod009A:feature:,0000,0001,0085"
	for p, v := range map[string]string{
		"devices/pci0000:00/0000:00:04.0/uevent":                   "DRIVER=xhci_hcd\nPCI_CLASS=C0330\nMODALIAS=pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/uevent":  "DEVTYPE=usb_interface\nMODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n",
		"devices/pci0000:00/0000:00:05.0/uevent":                   "MODALIAS=pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"devices/system/cpu/cpu0/uevent":                           "MODALIAS=" + cpu + "\n",
		"devices/system/cpu/cpu1/uevent":                           "MODALIAS=" + cpu + "\n",
		"devices/platform/i8042/serio0/input/input3/uevent":        "PRODUCT=11/1/1/ab41\nMODALIAS=input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw\n",
		"devices/platform/empty/uevent":                            "MODALIAS=\n",
		"devices/platform/x/uevent":                                "DRIVER=x\n",
		"devices/platform/x/modalias":                              "platform:not-read-here\n",
		"devices/virtual/hidden/uevent":                            "MODALIAS=on:no:bus:nor:class\n",
		"devices/pci0000:00/0000:00:05.0/virtio1/block/vda/uevent": "MAJOR=254\nDEVNAME=vda\n",
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte(v), 0o444)
	}
	for link, dev := range map[string]string{
		"bus/pci/devices/0000:00:04.0": "pci0000:00/0000:00:04.0",
		"bus/pci/devices/0000:00:05.0": "pci0000:00/0000:00:05.0",
		"bus/usb/devices/2-1:1.0":      "pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0",
		"bus/cpu/devices/cpu0":         "system/cpu/cpu0",
		"bus/cpu/devices/cpu1":         "system/cpu/cpu1",
		"bus/platform/devices/empty":   "platform/empty",
		"bus/platform/devices/x":       "platform/x",
		"class/input/input3":           "platform/i8042/serio0/input/input3",
		"class/block/vda":              "pci0000:00/0000:00:05.0/virtio1/block/vda",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(link)), 0o755)
		if err := os.Symlink(filepath.Join(root, "devices", dev), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(sysModaliases(root), "\n")
	want := cpu + "\ninput:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw\npci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\nusb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
	if got != want {
		t.Errorf("modaliases:\n%s\nwant\n%s", got, want)
	}
}

// TestColdplugSettles: a round waits for the drivers others are loading
// (hotplug started the controller's driver) and scans again once they
// are in, so the devices they brought get their drivers before Coldplug
// returns.
func TestColdplugSettles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/ctrl.ko:\nkernel/child.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte("alias pci:v1234d0001* ctrl\nalias usb:v5678* child\n"), 0o644)
	l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	l.sys = t.TempDir()
	device := func(name, modalias string) {
		d := filepath.Join(l.sys, "devices", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "uevent"), []byte("MODALIAS="+modalias+"\n"), 0o644)
		bus := filepath.Join(l.sys, "bus", strings.Split(modalias, ":")[0], "devices")
		os.MkdirAll(bus, 0o755)
		os.Symlink(d, filepath.Join(bus, name))
	}
	device("ctrl0", "pci:v1234d0001")
	ctrlGo := make(chan struct{})
	var mu sync.Mutex
	var loaded []string
	l.insmod = func(p, _ string) error {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		if name == "ctrl" {
			<-ctrlGo
			device("child0", "usb:v5678") // the controller's bus brings a device
		}
		mu.Lock()
		loaded = append(loaded, name)
		mu.Unlock()
		return nil
	}
	// "Hotplug" starts the controller's driver before coldplug runs.
	hot := make(chan struct{})
	go func() { defer close(hot); l.Load(context.Background(), "hotplug", []string{"ctrl"}) }()
	for l.tried() == 0 {
		time.Sleep(time.Millisecond)
	}
	cold := make(chan struct{})
	go func() { defer close(cold); l.Coldplug(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	close(ctrlGo)
	<-cold
	<-hot
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(loaded, " ") != "ctrl child" {
		t.Errorf("Coldplug returned with %v loaded, want the controller's and then its device's driver", loaded)
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
