package modules

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSysModaliases: every device's modalias, for the devices of the
// buses and the classes of a sysfs-like tree (links to the devices, as in
// sysfs), each once, sorted: the modalias attribute where there is one; a
// bus's device without it (a CPU) gives its uevent's MODALIAS=; a class's
// device without it gives nothing, nor does an empty one, a device on no
// bus or class, or a block of the memory bus.
func TestSysModaliases(t *testing.T) {
	root := t.TempDir()
	const cpu = "cpu:type:x86,ven0000fam0006mod009A:feature:,0000,0001,0085"
	const xhci = "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30"
	const stick = "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
	const keyboard = "input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,ramlsfw"
	for p, v := range map[string]string{
		"devices/pci0000:00/0000:00:04.0/uevent":                    "DRIVER=xhci_hcd\nPCI_CLASS=C0330\nMODALIAS=pci:uevent-not-read\n",
		"devices/pci0000:00/0000:00:04.0/modalias":                  xhci + "\n",
		"devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/uevent":   "DEVTYPE=usb_interface\nMODALIAS=" + stick + "\n",
		"devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/modalias": stick + "\n",
		"devices/pci0000:00/0000:00:05.0/modalias":                  xhci + "\n",
		"devices/system/cpu/cpu0/uevent":                            "MODALIAS=" + cpu + "\n",
		"devices/system/cpu/cpu1/uevent":                            "MODALIAS=" + cpu + "\n",
		"devices/system/memory/memory0/uevent":                      "MODALIAS=memory:not-read\n",
		"devices/platform/i8042/serio0/input/input3/uevent":         "PRODUCT=11/1/1/ab41\nMODALIAS=" + keyboard + "\n",
		"devices/platform/i8042/serio0/input/input3/modalias":       keyboard + "\n",
		"devices/platform/empty/modalias":                           "\n",
		"devices/platform/x/uevent":                                 "DRIVER=x\n",
		"devices/virtual/hidden/modalias":                           "on:no:bus:nor:class\n",
		"devices/virtual/tty/tty0/uevent":                           "MODALIAS=class:uevent-not-read\n",
		"devices/pci0000:00/0000:00:05.0/virtio1/block/vda/uevent":  "MAJOR=254\nDEVNAME=vda\n",
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
		"bus/memory/devices/memory0":   "system/memory/memory0",
		"bus/platform/devices/empty":   "platform/empty",
		"bus/platform/devices/x":       "platform/x",
		"class/input/input3":           "platform/i8042/serio0/input/input3",
		"class/tty/tty0":               "virtual/tty/tty0",
		"class/block/vda":              "pci0000:00/0000:00:05.0/virtio1/block/vda",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(link)), 0o755)
		if err := os.Symlink(filepath.Join(root, "devices", dev), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(sysModaliases(root), "\n")
	want := strings.Join([]string{cpu, keyboard, xhci, stick}, "\n")
	if got != want {
		t.Errorf("modaliases:\n%s\nwant\n%s", got, want)
	}
	if got, want := strings.Join(busModaliases(root, "pci"), "\n"), xhci; got != want {
		t.Errorf("the PCI bus's modaliases: %q, want %q", got, want)
	}
}

// coldplugLoader is a Loader of the modules.dep and modules.alias given,
// on a sysfs-like tree of its own (l.sys) without devices yet.
func coldplugLoader(t *testing.T, dep, alias string) *Loader {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte(alias), 0o644)
	l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	l.sys = t.TempDir()
	return l
}

// busDevice adds device name with modalias (its uevent's alone, as a
// CPU has it) on the bus the modalias names, in sysfs-like tree sys.
func busDevice(sys, name, modalias string) {
	d := filepath.Join(sys, "devices", name)
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "uevent"), []byte("MODALIAS="+modalias+"\n"), 0o644)
	bus := filepath.Join(sys, "bus", strings.Split(modalias, ":")[0], "devices")
	os.MkdirAll(bus, 0o755)
	os.Symlink(d, filepath.Join(bus, name))
}

// TestColdplugSettles: a round waits for the drivers others are loading
// (hotplug started the controller's driver) and scans again once they
// are in, so the devices they brought get their drivers before Coldplug
// returns.
func TestColdplugSettles(t *testing.T) {
	l := coldplugLoader(t, "kernel/ctrl.ko:\nkernel/child.ko:\n", "alias pci:v1234d0001* ctrl\nalias usb:v5678* child\n")
	device := func(name, modalias string) { busDevice(l.sys, name, modalias) }
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
	// hostd lets anyone load them once the image is mounted (the guests'
	// link), then loads the rest: those the devices asked for are kept.
	l.SystemUp()
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

// The main goroutine keeps the main thread, where a background load
// would not lower itself (lowThread.lower): TestBackgroundYields sees
// every load on a thread of its own.
func init() { runtime.LockOSThread() }

// niceness is thread tid's nice value (0: the calling thread's; the raw
// getpriority system call answers 20 - nice).
func niceness(tid int) int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return -100
	}
	return 20 - p
}

// TestBackgroundYields: a background load runs at backgroundNice on a
// thread of its own; a foreground load that waits for it (Need), or for a
// module whose dependency it is, raises it to the boot's priority, even
// when it has not started yet; Hurry raises the rest; and no thread of
// the program stays low once those loads ended.
func TestBackgroundYields(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising a thread's priority back needs root")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/solo.ko:\nkernel/dep.ko:\nkernel/top.ko: kernel/dep.ko\nkernel/other.ko:\nkernel/late.ko:\n"), 0o644)
	l, err := NewLoader(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	at := map[string][2]int{}
	depStarted, depGo, otherGo := make(chan struct{}), make(chan struct{}), make(chan struct{})
	l.insmod = func(p, _ string) error {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		before := niceness(0)
		switch name {
		case "dep":
			close(depStarted)
			<-depGo
		case "other":
			<-otherGo
		}
		mu.Lock()
		at[name] = [2]int{before, niceness(0)}
		mu.Unlock()
		return nil
	}
	ctx := context.Background()
	// The low threads end with their loads (the main thread, which
	// cannot end, is parked for good instead): no goroutine runs low
	// once they ended.
	allAtZero := func() {
		t.Helper()
		var wg sync.WaitGroup
		var low atomic.Int32
		for range 64 {
			wg.Go(func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				if niceness(0) != 0 {
					low.Add(1)
				}
				time.Sleep(time.Millisecond)
			})
		}
		wg.Wait()
		if n := low.Load(); n > 0 {
			t.Errorf("%d of 64 goroutines ran on a thread left low", n)
		}
	}
	l.Background(ctx, "test", []string{"solo"})
	allAtZero()
	bg := make(chan struct{})
	go func() { defer close(bg); l.Background(ctx, "test", []string{"top", "other"}) }()
	<-depStarted
	waitNice := func(name string, want int) {
		t.Helper()
		l.mu.Lock()
		f := l.flights[name]
		l.mu.Unlock()
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			tid := int(f.low.tid.Load())
			if tid != 0 && niceness(tid) == want {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("%s's thread %d at nice %d, want %d", name, tid, niceness(tid), want)
			}
		}
	}
	waitNice("dep", backgroundNice)
	waitNice("other", backgroundNice)
	need := make(chan struct{})
	go func() { defer close(need); l.Need(ctx, "boot", "top", "absent") }()
	waitNice("dep", 0)
	close(depGo)
	<-need
	l.Hurry()
	waitNice("other", 0)
	close(otherGo)
	<-bg
	l.Background(ctx, "test", []string{"late"})
	mu.Lock()
	defer mu.Unlock()
	want := map[string][2]int{
		"solo":  {backgroundNice, backgroundNice},
		"dep":   {backgroundNice, 0}, // raised by Need, while it loaded
		"top":   {0, 0},              // raised before it started
		"other": {backgroundNice, 0}, // raised by Hurry
		"late":  {0, 0},              // after Hurry
	}
	for name, w := range want {
		if at[name] != w {
			t.Errorf("%s loaded at nice %v (before, after), want %v", name, at[name], w)
		}
	}
	allAtZero()
}

// TestColdplugPCIFirst: coldplug loads the PCI bus's drivers (the disk
// and USB controllers the boot waits for) at the boot's priority, the
// other devices' in the background.
func TestColdplugPCIFirst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising a thread's priority back needs root")
	}
	l := coldplugLoader(t, "kernel/nvme.ko:\nkernel/psmouse.ko:\n", "alias pci:v8086d0001* nvme\nalias serio:ty01* psmouse\n")
	busDevice(l.sys, "nvme0", "pci:v8086d0001")
	busDevice(l.sys, "serio0", "serio:ty01")
	var mu sync.Mutex
	at := map[string]int{}
	l.insmod = func(p, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		at[strings.TrimSuffix(filepath.Base(p), ".ko")] = niceness(0)
		return nil
	}
	if n := l.Coldplug(context.Background()); n != 2 {
		t.Errorf("Coldplug loaded %d modules, want 2", n)
	}
	if at["nvme"] != 0 || at["psmouse"] != backgroundNice {
		t.Errorf("loaded at nice %v, want nvme (PCI) at 0 and psmouse at %d", at, backgroundNice)
	}
}
