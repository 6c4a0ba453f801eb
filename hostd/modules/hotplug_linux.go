package modules

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thinhost/thinhost/hostd/sysimage"
	"golang.org/x/sys/unix"
)

// Loader loads modules of the image (modules.dep's graph in dir) once
// each, from any goroutine: the profile's list at boot, then the drivers
// of the devices present (coldplug) and of those that appear later
// (hotplug). Modules in the system image (modules.dep gives them absolute
// paths under sysimage.Dir) wait until it is mounted (systemMounted).
type Loader struct {
	log      *slog.Logger
	dir      string
	graph    *ModuleGraph
	aliases  *AliasTable
	optional map[string]bool

	// mu guards flights and systemUp. flights are the modules tried,
	// whatever the outcome, or being tried: Load calls run side by side
	// (the profile's list, coldplug, hotplug), and a module waits for its
	// dependencies' flights whichever call started them.
	mu       sync.Mutex
	flights  map[string]*flight
	systemUp bool
	// params are the command line's options for modules (ModuleParams).
	params map[string]string
	// deferred are the modules in the system image that a device asked
	// for before it was mounted (guarded by mu).
	deferred []string
	// insmod loads a module file with its options; sys is sysfs (/sys),
	// where devices are listed. Tests replace both.
	insmod func(path, params string) error
	sys    string
	// hurry is set once every load runs at the boot's priority
	// (Hurry); scanner is Coldplug's thread.
	hurry   atomic.Bool
	scanner lowThread
}

// NewLoader reads dir's modules.dep and, when there is one,
// modules.alias.
func NewLoader(log *slog.Logger, dir string) (*Loader, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	g, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	l := &Loader{log: log, dir: dir, graph: g, optional: map[string]bool{}, flights: map[string]*flight{}, insmod: Insmod, sys: "/sys"}
	if cmdline, err := os.ReadFile("/proc/cmdline"); err == nil {
		l.params = ModuleParams(string(cmdline))
	}
	if af, err := os.Open(filepath.Join(dir, "modules.alias")); err == nil {
		l.aliases, err = ParseModulesAlias(af)
		af.Close()
		if err != nil {
			log.Error("read modules.alias: every listed module is loaded", "err", err)
			l.aliases = nil
		}
	}
	return l, nil
}

// SetOptional marks names as modules that may fail to load (or be
// missing) without an error: drivers for hardware a laptop may lack.
func (l *Loader) SetOptional(names []string) {
	for _, n := range names {
		l.optional[n] = true
	}
}

// HasAliases reports whether the image has a modules.alias, without which
// device drivers cannot be told from the rest (and every listed module
// loads at once).
func (l *Loader) HasAliases() bool { return l.aliases != nil }

// DeviceDriven reports whether module name drives devices the kernel
// reports (modules.alias matches a bus), so that coldplug and hotplug
// load it when its device is there.
func (l *Loader) DeviceDriven(name string) bool {
	return l.aliases != nil && l.aliases.DeviceDriven(name)
}

// path is where module name's file is: modules.dep's path, relative to
// the modules directory or absolute.
func (l *Loader) path(name string) string {
	p := l.graph.Path[name]
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// inSystem reports whether name's file is in the system image.
func (l *Loader) inSystem(name string) bool {
	return strings.HasPrefix(l.graph.Path[name], sysimage.Dir+"/")
}

// Load loads names with their dependencies, in parallel along the graph,
// skipping what was tried before (and, until the system image is
// mounted, what is in it), and reports how many this call loaded and
// tried. It returns once names and their dependencies are loaded or
// failed, whichever call loads them: other calls may run at the same
// time, and those it waits for that load in the background go on at the
// boot's priority.
func (l *Loader) Load(ctx context.Context, why string, names []string) (loaded, tried int) {
	return l.load(ctx, why, names, false)
}

// Background is Load at a low CPU priority (backgroundNice) for the
// loads it starts, until a step of the boot needs them (Need) or hurries
// every load (Hurry): for what no step waits for yet.
func (l *Loader) Background(ctx context.Context, why string, names []string) (loaded, tried int) {
	return l.load(ctx, why, names, true)
}

// Hurry runs every load at the boot's priority from now on, those under
// way too, and Coldplug's scans: for a step that waits for every device.
func (l *Loader) Hurry() {
	l.hurry.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.flights {
		f.low.raise()
	}
	l.scanner.raise()
}

// Split tells the modules of names in the initramfs from those in the
// system image.
func (l *Loader) Split(names []string) (initramfs, system []string) {
	for _, n := range names {
		if l.inSystem(n) {
			system = append(system, n)
		} else {
			initramfs = append(initramfs, n)
		}
	}
	return initramfs, system
}

func (l *Loader) load(ctx context.Context, why string, names []string, background bool) (loaded, tried int) {
	order, missing := l.graph.Closure(names)
	for _, m := range missing {
		if !l.optional[m] {
			l.log.Error("module not in the image", "module", m)
		}
	}
	flights := map[string]*flight{}
	var mine, others []string
	l.mu.Lock()
	for _, n := range order {
		if f := l.flights[n]; f != nil {
			flights[n] = f
			others = append(others, n)
			if !background {
				// Waited for at the boot's priority: loaded at it too.
				f.low.raise()
			}
			continue
		}
		if !l.systemUp && l.inSystem(n) {
			if !slices.Contains(l.deferred, n) {
				l.deferred = append(l.deferred, n)
			}
			continue
		}
		f := newFlight()
		l.flights[n] = f
		flights[n] = f
		mine = append(mine, n)
	}
	l.mu.Unlock()
	results := loadFlights(ctx, l.graph, mine, flights, func(ctx context.Context, name, _ string) error {
		if background {
			low := &flights[name].low
			low.lower(&l.hurry)
			defer low.done()
		}
		return l.loadFile(name)
	})
	for _, n := range others {
		select {
		case <-flights[n].done:
		case <-ctx.Done():
		}
	}
	for _, r := range results {
		switch {
		case r.Err == nil:
			loaded++
			if p := l.params[r.Name]; p != "" {
				l.log.Info("module loaded with the kernel command line's options", "module", r.Name, "options", p)
			}
			l.log.Debug("loaded module", "module", r.Name, "for", why, "duration", r.Duration.Round(time.Millisecond))
		case errors.Is(r.Err, unix.ENODEV), errors.Is(r.Err, unix.EOPNOTSUPP):
			// kvm_intel on an AMD CPU, kvm_* without virtualization.
			l.log.Info("module does not apply to this machine", "module", r.Name, "err", r.Err)
		case l.optional[r.Name]:
			l.log.Info("optional module not loaded", "module", r.Name, "err", r.Err)
		default:
			l.log.Error("load module", "module", r.Name, "for", why, "err", r.Err)
		}
	}
	return loaded, len(results)
}

// loadFile loads module name's file. Once loaded, a file of the initramfs
// (under the modules directory, nowhere else) is removed: it held memory
// for the host's whole life, and a module loads once per boot (the
// system image's files are on disk and stay). A
// file removed before, in another process (the kernel's modprobe
// helper), is of a module the kernel has.
func (l *Loader) loadFile(name string) error {
	p := l.path(name)
	err := l.insmod(p, l.params[name])
	switch {
	case err == nil && strings.HasPrefix(p, l.dir+"/"):
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.log.Debug("remove a loaded module's file", "file", p, "err", err)
		}
	case errors.Is(err, fs.ErrNotExist) && l.loadedInKernel(name):
		err = nil
	}
	return err
}

// loadedInKernel reports whether the kernel has module name loaded.
func (l *Loader) loadedInKernel(name string) bool {
	_, err := os.Stat(filepath.Join(l.sys, "module", name))
	return err == nil
}

// SystemUp lets the system image's modules load from now on, for any
// caller. Those the devices asked for until then wait for SystemMounted,
// whether it is called before or after.
func (l *Loader) SystemUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.systemUp = true
}

// SystemMounted lets the system image's modules load (SystemUp) and
// loads the profile's (names) and the drivers the devices asked for
// until now, in the background (Background).
func (l *Loader) SystemMounted(ctx context.Context, names []string) (loaded int) {
	l.mu.Lock()
	l.systemUp = true
	names = append(append([]string{}, names...), l.deferred...)
	l.deferred = nil
	l.mu.Unlock()
	loaded, _ = l.Background(ctx, "system image", names)
	return loaded
}

// Need loads those of names that are modules of the image, with their
// dependencies, and returns once they are loaded or failed, whoever
// loads them: a step of the boot waits for what it needs and no more.
// A name the image has no module for is built into the kernel (or not
// needed), and is no error.
func (l *Loader) Need(ctx context.Context, why string, names ...string) {
	var have []string
	for _, n := range names {
		if _, ok := l.graph.Path[n]; ok {
			have = append(have, n)
		}
	}
	if len(have) > 0 {
		l.Load(ctx, why, have)
	}
}

// forDevices loads the image's drivers for modaliases.
func (l *Loader) forDevices(ctx context.Context, why string, modaliases []string) int {
	n, _ := l.Load(ctx, why, l.driversFor(modaliases))
	return n
}

// driversFor lists the image's drivers for modaliases, each once.
func (l *Loader) driversFor(modaliases []string) []string {
	if l.aliases == nil {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, m := range modaliases {
		for _, n := range l.aliases.Match(m) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

// busModaliases lists the modaliases of sysfs root's devices on bus, as
// sysModaliases reads them.
func busModaliases(root, bus string) []string {
	seen := map[string]bool{}
	readModaliases(filepath.Join(root, "bus", bus, "devices"), true, seen)
	return sortedKeys(seen)
}

// readModaliases adds the modalias of each device in dir to seen: its
// modalias attribute, or for a bus's device without one (a CPU) the
// MODALIAS= of its uevent. A class's device without the attribute has
// none (a tty, a disk, an input device's event node).
func readModaliases(dir string, bus bool, seen map[string]bool) {
	entries, _ := os.ReadDir(dir)
	buf := make([]byte, 4096)
	for _, e := range entries {
		dev := filepath.Join(dir, e.Name())
		if b, ok := readSmall(filepath.Join(dev, "modalias"), buf); ok {
			if m := strings.TrimSpace(string(b)); m != "" {
				seen[m] = true
			}
			continue
		}
		if !bus {
			continue
		}
		b, ok := readSmall(filepath.Join(dev, "uevent"), buf)
		if !ok {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if m, ok := strings.CutPrefix(line, "MODALIAS="); ok {
				if m = strings.TrimSpace(m); m != "" {
					seen[m] = true
				}
			}
		}
	}
}

// readSmall reads a sysfs attribute into buf (one page: all sysfs gives):
// an open, a read and a close, no stat.
func readSmall(path string, buf []byte) ([]byte, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil || n < 0 {
		return nil, false
	}
	return buf[:n], true
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// sysModaliases lists the modalias of every device of sysfs root (/sys),
// sorted and each once: the devices of every bus and every class, as
// udev's coldplug finds them, not the whole of /sys/devices with its
// attributes (under TCG that walk took a few hundred milliseconds of the
// boot). Each device's modalias attribute where it has one (reading it
// costs the kernel less than the uevent, and most class devices have
// none: under TCG the scans took 0.2-0.5 s each of a boot bound by its
// CPUs), the uevent's MODALIAS= for a bus's device without it: a CPU has
// none, and its drivers (kvm_intel, kvm_amd, aesni) are asked for by its
// uevent's alone. The memory bus's blocks (one per 128 MiB) have no
// driver and are not read.
func sysModaliases(root string) []string {
	seen := map[string]bool{}
	buses, _ := os.ReadDir(filepath.Join(root, "bus"))
	for _, b := range buses {
		if b.Name() == "memory" {
			continue
		}
		readModaliases(filepath.Join(root, "bus", b.Name(), "devices"), true, seen)
	}
	classes, _ := os.ReadDir(filepath.Join(root, "class"))
	for _, c := range classes {
		readModaliases(filepath.Join(root, "class", c.Name()), false, seen)
	}
	return sortedKeys(seen)
}

// Coldplug loads drivers for the devices present, again while loading
// them brings new devices (a controller's driver makes its buses'
// devices appear), up to a few rounds. Each round after the first waits
// until no module is loading, whoever loads it (Hotplug often starts a
// driver before a round finds its device), so that the devices those
// drivers made are there to scan; it ends after such a round in which no
// module was tried, by it or by anyone.
//
// Its scans and loads run in the background (Background), but for the
// first round's PCI drivers, until Hurry.
func (l *Loader) Coldplug(ctx context.Context) int {
	total := make(chan int)
	go func() {
		l.scanner.lower(&l.hurry)
		defer l.scanner.done()
		total <- l.coldplug(ctx)
	}()
	return <-total
}

func (l *Loader) coldplug(ctx context.Context) int {
	total := 0
	for round := 0; round < 6; round++ {
		start := time.Now()
		if round > 0 {
			l.settle(ctx)
		}
		before := l.tried()
		settled := time.Now()
		var first sync.WaitGroup
		var n, firstN int
		if round == 0 {
			// The PCI bus before the rest: its drivers (disk and USB
			// controllers) bring the disks the boot waits for, which the
			// whole scan would delay by a few hundred milliseconds under
			// TCG.
			if pci := l.driversFor(busModaliases(l.sys, "pci")); len(pci) > 0 {
				first.Go(func() { firstN, _ = l.Load(ctx, "coldplug", pci) })
			}
		}
		aliases := sysModaliases(l.sys)
		scanned := time.Now()
		drivers := l.driversFor(aliases)
		matched := time.Now()
		n, _ = l.Background(ctx, "coldplug", drivers)
		first.Wait()
		n += firstN
		l.log.Debug("coldplug round", "round", round, "settle", settled.Sub(start).Round(time.Millisecond), "devices", len(aliases),
			"scan", scanned.Sub(settled).Round(time.Millisecond), "match", matched.Sub(scanned).Round(time.Millisecond),
			"load", time.Since(matched).Round(time.Millisecond), "loaded", n)
		total += n
		// The first round scans at once, beside the profile's modules
		// (the boot waits for a disk its drivers bring), so it never
		// ends the scanning: the second waits for what is loading.
		if (round > 0 && l.tried() == before) || ctx.Err() != nil {
			break
		}
	}
	return total
}

// settle waits until every module tried so far finished loading,
// including those started meanwhile.
func (l *Loader) settle(ctx context.Context) {
	for {
		l.mu.Lock()
		var pending []*flight
		for _, f := range l.flights {
			select {
			case <-f.done:
			default:
				pending = append(pending, f)
			}
		}
		l.mu.Unlock()
		if len(pending) == 0 {
			return
		}
		for _, f := range pending {
			select {
			case <-f.done:
			case <-ctx.Done():
				return
			}
		}
	}
}

// tried is how many modules were tried or are being tried.
func (l *Loader) tried() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.flights)
}

// ListenUevents opens the kernel's uevent socket. Open it before
// coldplug, so that no device appears unseen between the scan and the
// first read.
func ListenUevents() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return -1, err
	}
	// A large buffer: a USB hub's devices arrive in a burst.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Hotplug reads uevents from fd for the host's whole life, loading the
// image's drivers for each device added, handing every uevent to uevents
// (USB devices for the guests; nil: none), which must not block.
func (l *Loader) Hotplug(ctx context.Context, fd int, uevents func(Uevent)) {
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				// Events were lost: look at every device again.
				l.log.Warn("uevents lost; scanning devices again")
				l.forDevices(ctx, "rescan", sysModaliases(l.sys))
				continue
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			l.log.Error("read uevents", "err", err)
			return
		}
		// Only the kernel (port 0) speaks on this group with this format.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		ev, ok := ParseUevent(buf[:n])
		if ok && uevents != nil {
			uevents(ev)
		}
		if !ok || ev.Action != "add" || ev.Env["MODALIAS"] == "" {
			continue
		}
		if loaded := l.forDevices(ctx, ev.Env["DEVPATH"], []string{ev.Env["MODALIAS"]}); loaded > 0 {
			l.log.Info("drivers loaded for a new device", "device", ev.Env["DEVPATH"], "modalias", ev.Env["MODALIAS"], "modules", loaded)
		}
	}
}

// Insmod loads the module file at path with params (init_module's). A
// .zst file is one the builder packed for the initramfs (Packed): it is
// decompressed here, since the kernel may not.
func Insmod(path, params string) error {
	if strings.HasSuffix(path, ".zst") {
		image, err := unpackModule(path)
		if err != nil {
			return err
		}
		if err := unix.InitModule(image, params); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}
