package hostd

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// modLoader loads modules of the image (modules.dep's graph in dir) once
// each, from any goroutine: the profile's list at boot, then the drivers
// of the devices present (coldplug) and of those that appear later
// (hotplug). Modules in the system image (modules.dep gives them absolute
// paths under SystemDir) wait until it is mounted (systemMounted).
type modLoader struct {
	log      *slog.Logger
	dir      string
	graph    *ModuleGraph
	aliases  *AliasTable
	optional map[string]bool

	// loading serializes load: a module is loaded only after its
	// dependencies finished loading, which LoadParallel guarantees within
	// one call, not across calls.
	loading  sync.Mutex
	done     map[string]bool // tried, whatever the outcome
	systemUp bool
	// params are the command line's options for modules (ModuleParams).
	params map[string]string
	// insmod loads a module file with its options; sysDevices is where
	// devices are listed (/sys/devices). Tests replace both.
	insmod     func(path, params string) error
	sysDevices string
	// uevents, when set, is handed every uevent hotplug reads (USB
	// devices for the guests); it must not block.
	uevents func(Uevent)
}

// newModLoader reads dir's modules.dep and, when there is one,
// modules.alias.
func newModLoader(log *slog.Logger, dir string) (*modLoader, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	g, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	l := &modLoader{log: log, dir: dir, graph: g, optional: map[string]bool{}, done: map[string]bool{}, insmod: insmod, sysDevices: "/sys/devices"}
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

// path is where module name's file is: modules.dep's path, relative to
// the modules directory or absolute.
func (l *modLoader) path(name string) string {
	p := l.graph.Path[name]
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// inSystem reports whether name's file is in the system image.
func (l *modLoader) inSystem(name string) bool {
	return strings.HasPrefix(l.graph.Path[name], SystemDir+"/")
}

// load loads names with their dependencies, in parallel along the graph,
// skipping what was tried before (and, until the system image is
// mounted, what is in it), and reports how many loaded.
func (l *modLoader) load(ctx context.Context, why string, names []string) (loaded, tried int) {
	order, missing := l.graph.Closure(names)
	for _, m := range missing {
		if !l.optional[m] {
			l.log.Error("module not in the image", "module", m)
		}
	}
	l.loading.Lock()
	defer l.loading.Unlock()
	var todo []string
	for _, n := range order {
		if l.done[n] || (!l.systemUp && l.inSystem(n)) {
			continue
		}
		l.done[n] = true
		todo = append(todo, n)
	}
	if len(todo) == 0 {
		return 0, 0
	}
	results := LoadParallel(ctx, l.graph, todo, func(ctx context.Context, name, _ string) error {
		return l.insmod(l.path(name), l.params[name])
	})
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

// systemMounted lets the system image's modules load: the profile's
// (names) at once, device drivers for the devices present.
func (l *modLoader) systemMounted(ctx context.Context, names []string) (loaded int) {
	l.loading.Lock()
	l.systemUp = true
	l.loading.Unlock()
	loaded, _ = l.load(ctx, "profile", names)
	return loaded + l.coldplug(ctx)
}

// forDevices loads the image's drivers for modaliases.
func (l *modLoader) forDevices(ctx context.Context, why string, modaliases []string) int {
	if l.aliases == nil {
		return 0
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
	n, _ := l.load(ctx, why, names)
	return n
}

// sysModaliases lists the modalias of every device under root
// (/sys/devices), sorted and each once.
func sysModaliases(root string) []string {
	seen := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a device gone while walking
		}
		if d.Type().IsRegular() && d.Name() == "modalias" {
			if b, err := os.ReadFile(p); err == nil {
				if m := strings.TrimSpace(string(b)); m != "" {
					seen[m] = true
				}
			}
		}
		return nil
	})
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// coldplug loads drivers for the devices present, again while loading
// them brings new devices (a controller's driver makes its buses'
// devices appear), up to a few rounds.
func (l *modLoader) coldplug(ctx context.Context) int {
	total := 0
	for round := 0; round < 4; round++ {
		n := l.forDevices(ctx, "coldplug", sysModaliases(l.sysDevices))
		total += n
		if n == 0 {
			break
		}
	}
	return total
}

// listenUevents opens the kernel's uevent socket. Open it before
// coldplug, so that no device appears unseen between the scan and the
// first read.
func listenUevents() (int, error) {
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

// hotplug reads uevents from fd for the host's whole life, loading the
// image's drivers for each device added.
func (l *modLoader) hotplug(ctx context.Context, fd int) {
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				// Events were lost: look at every device again.
				l.log.Warn("uevents lost; scanning devices again")
				l.forDevices(ctx, "rescan", sysModaliases(l.sysDevices))
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
		if ok && l.uevents != nil {
			l.uevents(ev)
		}
		if !ok || ev.Action != "add" || ev.Env["MODALIAS"] == "" {
			continue
		}
		if loaded := l.forDevices(ctx, ev.Env["DEVPATH"], []string{ev.Env["MODALIAS"]}); loaded > 0 {
			l.log.Info("drivers loaded for a new device", "device", ev.Env["DEVPATH"], "modalias", ev.Env["MODALIAS"], "modules", loaded)
		}
	}
}
