package hostd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/console"
	"github.com/thinhost/thinhost/hostd/guestlink"
	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/hostd/modules"
	"github.com/thinhost/thinhost/hostd/power"
	"github.com/thinhost/thinhost/hostd/smb"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/hostd/wifi"
	"github.com/thinhost/thinhost/images/layout/config"
)

// Options configure a Daemon.
type Options struct {
	Config *config.Config
	// ModulesRoot is /lib/modules.
	ModulesRoot string
	Log         *slog.Logger
	// Console receives the ready line and the power-off notice; when it
	// has a Drain method (Consoles), hostd drains it before powering off.
	Console io.Writer
	// Terminals are the consoles on which a debug shell is offered.
	Terminals []*os.File
	// Reopen opens a terminal again after a shell that ended hung it up
	// (Consoles.Reopen); nil: the terminal is offered no more shells.
	Reopen func(name string) (*os.File, error)
	// Shell is the debug shell; "" uses /bbin/gosh.
	Shell string
	// Logs keeps recent log lines for the API; hostd's log handler must
	// write to it too.
	Logs *logring.Ring
	// NoData skips the data partition (for hosts without one).
	NoData bool
	// Ready is called once after the ready line is printed.
	Ready func()
	// PowerOff ends the machine; nil uses the reboot syscall. Tests
	// replace it.
	PowerOff func() error
}

// Daemon is a running hostd.
type Daemon struct {
	opts  Options
	start time.Time
	// steps times bringing the host up (the ready line's log).
	steps *bootSteps
	data  *storage.DataStatus
	usage smb.UsageCache
	// secureBoot is storage.SecureBootState's answer at boot.
	secureBoot string
	// apiFingerprint is the API's certificate on the host's network.
	apiFingerprint string
	// guestOff carries the name of a guest that shut itself down with
	// on_shutdown = "poweroff": the host powers off too.
	guestOff chan string
	// mods loads the image's modules; modsNow are the profile's that
	// drive no device (loaded at once, not by device), modsEarly those
	// of them in the initramfs.
	mods      *modules.Loader
	modsNow   []string
	modsEarly []string
	// systemMods is closed when the system image's modules are loaded.
	systemMods chan struct{}
	// devices is closed once the drivers of the devices present at boot
	// are loaded (Loader.Coldplug ended), in the background of the boot.
	devices chan struct{}
	// slots are the A/B system slots; systemMounted says the booted
	// one's system image is mounted.
	slots         *slots
	systemMounted bool
	// panel is the screen and keyboard a guest on it takes.
	panel *console.Panel
	// services are the mounts of the services' roots.
	services serviceRoots
	// kernel is what the kernel's log says is wrong (KernelWatch).
	kernel KernelWatch
	// recorded are problems met while the host came up (Problems).
	recordedMu sync.Mutex
	// lowSpace is the data partition's free-space warning while it is
	// low (watchDataSpace; guarded by recordedMu).
	lowSpace string
	recorded []string
	sup      *supervise.Supervisor
	vms      *vm.Manager
	// link is the guests' host-only link (nil: none, or it failed).
	link *guestlink.Link
	// usb gives USB devices plugged in to the guests.
	usb *usbPlugs
	// sound is the card guests play through (nil: none).
	sound *SoundCard
	// firstBoot is what the builder left on the empty data partition,
	// until the services that need it took it.
	firstBoot *config.FirstBoot
	// wifi drives wpa_supplicant once a wireless interface is there;
	// wifiWait says why it is not yet.
	wifi     atomic.Pointer[wifi.Manager]
	wifiWait atomic.Pointer[api.Wifi]
	// sharesUp, when set, is closed once smbd listens (or gave up).
	sharesUp chan struct{}
	// dataID is the data filesystem's UUID; smbEarly, when set, is
	// closed once smbd was started before the data partition was
	// mounted (startSharesEarly), with machine SID smbSID ("": not
	// started).
	dataID   [16]byte
	smbEarly chan struct{}
	smbSID   string
	// smbStopWait ends the wait for smbd's listening (sharesUp).
	smbStopWait context.CancelFunc
	// sharePW is the share user's password, sharePWFrom where it is from.
	sharePW, sharePWFrom string
	power                chan string
	// startCPU is the CPUs' time when hostd started: how busy they were
	// until ready says whether the boot waits for work or for devices.
	startCPU cpuTimes
	// logFile copies the log to the data partition; stopLog ends it.
	logFile *logFile
	stopLog context.CancelFunc
}

// New returns a Daemon for opts.
func New(opts Options) *Daemon {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ModulesRoot == "" {
		opts.ModulesRoot = "/lib/modules"
	}
	if opts.Console == nil {
		opts.Console = os.Stdout
	}
	if opts.Shell == "" {
		opts.Shell = "/bbin/gosh"
	}
	if opts.PowerOff == nil {
		opts.PowerOff = powerOff
	}
	if opts.Logs == nil {
		opts.Logs = logring.New(1000)
	}
	sup := supervise.New(opts.Log, func(l supervise.Line) {
		opts.Log.Info(l.Text, "service", l.Service, "stream", l.Stream)
	})
	now := time.Now()
	d := &Daemon{opts: opts, start: now, startCPU: readCPUTimes(), steps: newBootSteps(now, time.Now), sup: sup, power: make(chan string, 1), guestOff: make(chan string, 1), panel: console.NewPanel(opts.Log, opts.Console), slots: newSlots(opts.Log)}
	d.usb = newUSBPlugs(d)
	return d
}

// bootHeapLimit bounds hostd's memory while the collector waits for the
// ready line (Run): a fraction of the smallest host's (1 GiB).
const bootHeapLimit = 96 << 20

// Run brings the host up, prints the ready line and waits for a power
// button press or ctx's cancellation (a shutdown request); then it powers
// the machine off cleanly. It returns only if powering off failed.
func (d *Daemon) Run(ctx context.Context) error {
	log := d.opts.Log
	cfg := d.opts.Config
	// The collector waits while the host comes up, unless the heap
	// reaches bootHeapLimit: what bringing it up allocates (modules
	// unpacked, device scans, smb.conf) is garbage by the ready line,
	// where it goes at once. Under TCG collecting along the way took
	// 0.3-0.5 s of CPU in a boot that had none to spare.
	gcPercent, memLimit := debug.SetGCPercent(-1), debug.SetMemoryLimit(bootHeapLimit)
	restoreGC := sync.OnceFunc(func() {
		debug.SetGCPercent(gcPercent)
		debug.SetMemoryLimit(memLimit)
	})
	defer restoreGC()
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			log.Warn("set hostname", "hostname", cfg.Hostname, "err", err)
		}
	}
	if err := mountBase(log); err != nil {
		log.Warn("mount base filesystems", "err", err)
	}
	relaxReserve(log)
	cad := make(chan os.Signal, 1)
	signal.Notify(cad, unix.SIGINT)
	defer signal.Stop(cad)
	if err := console.TakeCtrlAltDel(); err != nil {
		log.Warn("Ctrl+Alt+Del", "err", err)
	}
	// The boot loader's variables (which disk and slot booted) at once,
	// then the system image's and the data partition's filesystems
	// before the rest.
	d.loadModules(ctx, []string{storage.EfivarsFS}, []string{storage.SystemFS, storage.DataFS})
	d.steps.done("modules")
	d.slots.findBooted()
	d.secureBoot = storage.SecureBootState()
	fmt.Fprintf(d.opts.Console, "%s%s\n", SecureBootPrefix, d.secureBoot)
	startNetwork(ctx, log, d.opts.Console)
	d.steps.done("secure boot, network")
	logCtx, stopLog := context.WithCancel(context.Background())
	defer stopLog()
	// The guests' link is made beside the data partition's setup, once
	// its modules (tun, vhost_net, bridge: the system image's) are in.
	linkUp := make(chan struct{})
	startLink := sync.OnceFunc(func() {
		go func() {
			defer close(linkUp)
			d.needModules(ctx, guestlink.Modules...)
			d.setupGuestLink()
		}()
	})
	if !d.opts.NoData {
		// The boot disk named by the boot loader is found as soon as its
		// driver loaded; without that name, a partition's label must be
		// on one disk only, which is known once every disk's driver is.
		if !storage.BootDiskNamed() {
			d.waitDevices("the boot loader did not name the boot disk")
		}
		d.needModules(ctx, storage.SystemFS)
		if err := storage.MountSystem(ctx, log, d.slots.booted); err != nil {
			d.record("system image not mounted: %v", err)
		} else {
			d.systemMounted = true
			if d.mods != nil {
				// Its modules load for anyone from now on (the guests'
				// link needs bridge and tun).
				d.mods.SystemUp()
			}
			// Beside the data partition's setup; guests wait for them
			// (kvm, vhost, tun), the ready line too.
			d.systemMods = make(chan struct{})
			go func() {
				defer close(d.systemMods)
				d.loadSystemModules(ctx)
			}()
		}
		d.steps.done("system image")
		startLink()
		// An internal disk is chosen among all of them; the TPM and the
		// keyboard that unlock the partition are devices too, and the
		// profile's modules (dm-crypt, the TPM's) unlock it.
		if cfg.DataEncrypt {
			d.waitProfileModules(ctx)
		}
		switch {
		case cfg.DataDisk == "internal":
			d.waitDevices("the data partition is on an internal disk")
		case cfg.DataEncrypt:
			d.waitDevices("the data partition is encrypted")
		}
		// The filesystem's modules (all the profile's that drive no
		// device) are waited for once e2fsck or mke2fs, which do not
		// need them, did their part.
		d.data = storage.SetupData(ctx, log, storage.DataOptions{Encrypt: cfg.DataEncrypt, TPM: cfg.DataTPM, SecureBootOn: strings.HasPrefix(d.secureBoot, "on"),
			Internal: cfg.DataDisk == "internal", Serial: cfg.DataDiskSerial, FirstBoot: d.takeFirstBoot,
			BeforeMount: func() { d.waitProfileModules(ctx) },
			Filesystem:  func(id [16]byte) { d.startSharesEarly(ctx, id, linkUp) }}, console.AskConsoles(d.opts.Terminals))
		if d.data.Created && cfg.DataTPM {
			// The recovery key was on the screen: it goes.
			console.ClearTerminals(d.opts.Terminals)
		}
		fmt.Fprintln(d.opts.Console, storage.DataLine(d.data))
		if d.data.Mounted {
			go d.watchDataSpace(logCtx)
			d.logFile = startLogFile(logCtx, filepath.Join(storage.DataDir, "logs"), d.opts.Logs, time.Second)
			log.Info("data partition ready", "boot", d.data.Boot, "device", d.data.Device, "size_mib", d.data.Size>>20)
			if name, err := kernelDeviceName(storage.DataDir); err != nil {
				log.Warn("the data partition's kernel name", "err", err)
			} else {
				d.kernel.DataDevice = name
			}
		}
	}
	d.steps.done("data partition")
	// An error in the data partition's filesystem: what is written goes
	// to the disk now, before anything else goes wrong; the health says
	// to restart, which repairs it.
	d.kernel.OnData = func() { syncData(log) }
	startKernelWatch(log, d.opts.Console, &d.kernel)
	d.stopLog = stopLog
	d.startWifi(ctx)
	// The guests' link first: smbd and the API listen on its address.
	startLink()
	<-linkUp
	d.steps.done("wifi, guests' link")
	d.setupShares(ctx)
	d.steps.done("shares")
	d.startServices(ctx)
	d.steps.done("services")
	if d.systemMods != nil {
		<-d.systemMods
	}
	d.steps.done("system image modules")
	// Guests pass devices through, the power button is an input device:
	// from here on, every device present at boot has its driver.
	d.waitProfileModules(ctx)
	d.waitDevices("")
	d.steps.done("device drivers")
	d.setupVMs(ctx)
	d.steps.done("guests")

	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	d.serveAPI(apiCtx)

	button := make(chan string, 1)
	n, err := power.WatchPowerButtons(ctx, log, button)
	if err != nil || n == 0 {
		log.Warn("no ACPI power button found: power off through a shutdown request instead", "err", err)
	}
	d.steps.done("api, power button")

	// The guests start once the shares answer, and so does the ready line.
	if d.sharesUp != nil {
		<-d.sharesUp
	}
	d.steps.done("smbd listening")
	if d.vms != nil {
		for _, err := range d.vms.Autostart(ctx) {
			d.record("%v", err)
		}
		go d.watchSound(ctx)
	}
	// Status lines before the ready line: run --check repeats what it has
	// seen when the ready line arrives, and fails on a degraded health.
	fmt.Fprintln(d.opts.Console, servicesLine(d.sup.Status()))
	fmt.Fprintln(d.opts.Console, HealthLine(d.problems()))
	fmt.Fprintln(d.opts.Console, ReadyLine)
	d.steps.done("guests started")
	log.Info("ready", "since_start", time.Since(d.start).Round(time.Millisecond), "power_buttons", n, "steps", d.steps.String(),
		"cpu_busy", fmt.Sprintf("%d%%", d.startCPU.busy(readCPUTimes())))
	if log.Enabled(ctx, slog.LevelDebug) {
		log.Debug("cpu time by program until ready", "programs", cpuByProgram(readProcs()))
	}
	// What bringing the host up allocated (module lists, the data
	// partition's checks, smb.conf) is garbage now: back to the kernel
	// at once, not when the scavenger gets to it.
	restoreGC()
	d.smbAfterBoot()
	debug.FreeOSMemory()
	if !d.opts.NoData {
		// The slot that booted is good once its system image and the
		// data partition are up: the loader keeps it.
		d.slots.ready(ctx, d.systemMounted && d.data != nil && d.data.Mounted)
		d.printSlots()
	}
	if d.opts.Ready != nil {
		d.opts.Ready()
	}
	shellCtx, stopShells := context.WithCancel(ctx)
	sh := console.NewShells(d.opts.Shell, log, d.opts.Reopen)
	d.panel.SetShells(func() { sh.End(console.IsPanelConsole) })
	// The serial console's shell asks for no password (who has the cable
	// has the machine); the panel's only with the profile's, and none
	// without one.
	for _, t := range d.opts.Terminals {
		hash := ""
		if console.IsPanelConsole(t.Name()) {
			if hash = cfg.ShellPasswordHash; hash == "" {
				continue
			}
		}
		fmt.Fprintln(t, console.ShellHint)
		sh.Offer(shellCtx, t, hash)
	}

	lowBattery := make(chan string, 1)
	go power.WatchBattery(shellCtx, log, power.SupplyDir, cfg.LowBattery, 30*time.Second, lowBattery)
	lid := make(chan bool, 1)
	power.WatchLids(shellCtx, log, lid)
	if !cfg.BrightnessKeysToGuest {
		power.WatchBrightnessKeys(shellCtx, log)
	}
	if !cfg.VolumeKeysToGuest {
		watchVolumeKeys(shellCtx, log, d.sound)
	}
	if cfg.Wifi != nil {
		watchRadioKeys(shellCtx, log, d.opts.Console)
	}

	var reason string
	reboot := false
	for reason == "" {
		select {
		case what := <-lowBattery:
			reason = what
		case dev := <-button:
			reason = "power button (" + dev + ")"
		case <-ctx.Done():
			reason = "shutdown request"
		case name := <-d.guestOff:
			reason = "vm " + name + " shut itself down"
		case closed := <-lid:
			switch {
			case !closed:
				log.Info("lid opened")
			case cfg.Lid == power.LidIgnore:
				log.Info("lid closed: the profile says to ignore it")
			case cfg.Lid == power.LidPowerOff:
				reason = "lid closed"
			default:
				fmt.Fprintln(d.opts.Console, "thinhost: lid closed: suspending")
				d.sleep(ctx)
			}
		case action := <-d.power:
			if action == "suspend" {
				fmt.Fprintln(d.opts.Console, "thinhost: suspending (API suspend)")
				d.sleep(ctx)
				continue
			}
			reason = "API " + action
			reboot = action == "reboot"
		case <-cad:
			// Ctrl+Alt+Del: the guest on the panel reads it from the
			// keyboard itself; without one, a clean restart.
			if d.panel.Owned() {
				log.Info("Ctrl+Alt+Del is the guest's: the host goes on")
				continue
			}
			reason, reboot = "Ctrl+Alt+Del", true
		}
	}
	// Shells first: nothing may reset the consoles while hostd says what
	// it is doing.
	stopShells()
	sh.Stop()
	stopAPI()
	return d.shutdown(reason, reboot)
}

func (d *Daemon) shutdown(reason string, reboot bool) error {
	log := d.opts.Log
	verb := "powering off"
	if reboot {
		verb = "rebooting"
	}
	log.Info(verb, "reason", reason)
	// Health over the whole run (a service that failed after ready, a
	// guest that could not start), before stopping ends them all.
	fmt.Fprintln(d.opts.Console, HealthLine(d.problems()))
	fmt.Fprintln(d.opts.Console, "thinhost: "+verb+" ("+reason+")")
	// An update under way stops, and the ESP is unmounted, first.
	d.slots.close()
	d.sup.StopAll(func(name string, timeout time.Duration) {
		fmt.Fprintf(d.opts.Console, "thinhost: stopping %s (waiting up to %s)\n", name, timeout)
	})
	d.services.unmount(log)
	d.storeMixer()
	log.Info("syncing filesystems")
	unix.Sync()
	if d.logFile != nil {
		d.stopLog()
		d.logFile.Wait()
	}
	if d.data != nil && d.data.Mounted {
		fmt.Fprintln(d.opts.Console, "thinhost: unmounting the data partition")
		storage.UnmountData(log)
	}
	// The serial console is slow: wait until what was written has left
	// the UART, or the power-off cuts the last lines.
	if dr, ok := d.opts.Console.(interface{ Drain() }); ok {
		dr.Drain()
	}
	if reboot {
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
			return fmt.Errorf("reboot: %w", err)
		}
		return nil
	}
	return d.opts.PowerOff()
}

func powerOff() error {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// mountBase mounts what hostd relies on that u-root's init does not.
func mountBase(log *slog.Logger) error {
	var errs []error
	for _, m := range []struct{ src, dst, typ string }{
		{"tmpfs", "/run", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Mount(m.src, m.dst, m.typ, unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err))
		}
	}
	return errors.Join(errs...)
}

// loadModules loads the image's kernel modules (the closure of the
// profile's list, with modules.dep and modules.alias beside them): the
// ones that drive no device the kernel reports (filesystems, kvm, tun,
// bridge) at once; device drivers (storage, USB, GPUs, input) for the
// devices present (coldplug) and, for the host's whole life, for each
// device that appears (hotplug: a USB stick's disk shows up only after
// its controller's and its bus's drivers loaded).
//
// now are loaded (those of them that are modules of the image) before it
// returns, and next beside them, before the rest of the profile's in the
// background.
func (d *Daemon) loadModules(ctx context.Context, now, next []string) {
	log := d.opts.Log
	cfg := d.opts.Config
	dir := filepath.Join(d.opts.ModulesRoot, cfg.KernelRelease)
	start := time.Now()
	l, err := modules.NewLoader(log, dir)
	log.Debug("module tables read", "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		if len(cfg.Modules) > 0 {
			d.record("cannot load modules: %v", err)
		}
		return
	}
	l.SetOptional(cfg.OptionalModules)
	d.mods = l
	// The kernel asks for modules by name too (iwlwifi for iwlmvm, a
	// filesystem's mount for its module): through the image's modprobe.
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(modules.ModprobePath+"\n"), 0o644); err != nil {
		log.Warn("set the kernel's modprobe helper", "path", modules.ModprobePath, "err", err)
	}
	start = time.Now()
	for _, m := range append(append([]string{}, cfg.Modules...), cfg.OptionalModules...) {
		if !l.DeviceDriven(m) || slices.Contains(cfg.BootModules, m) {
			d.modsNow = append(d.modsNow, m)
		}
	}
	if !l.HasAliases() {
		loaded, tried := l.Load(ctx, "profile", d.modsNow)
		log.Info("modules loaded", "loaded", loaded, "of", tried, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	// Device drivers load in the background, the boot going on as soon
	// as what it needs next is there (the boot disk appears once its
	// driver loaded): the devices present (coldplug) and, listening
	// first so that none is missed in between, those that appear
	// (hotplug), such as the disks and buses of a controller whose
	// driver coldplug loaded.
	fd, err := modules.ListenUevents()
	if err != nil {
		log.Error("listen for new devices: drivers load for the devices present only", "err", err)
	} else {
		go l.Hotplug(context.WithoutCancel(ctx), fd, d.usb.enqueue)
	}
	d.devices = make(chan struct{})
	go func() {
		defer close(d.devices)
		n := l.Coldplug(ctx)
		log.Info("drivers loaded for the devices present", "modules", n, "duration", time.Since(start).Round(time.Millisecond))
	}()
	// The profile's modules load in the background too, each step of
	// the boot waiting for those it needs (needModules), all of them
	// before the data partition (waitProfileModules); the system
	// image's once it is mounted.
	d.modsEarly, _ = l.Split(d.modsNow)
	go func() {
		d.needModules(ctx, next...)
		loaded, _ := l.Background(ctx, "profile", d.modsEarly)
		log.Info("the profile's modules loaded", "loaded", loaded, "of", len(d.modsEarly), "duration", time.Since(start).Round(time.Millisecond))
	}()
	d.needModules(ctx, now...)
}

// needModules loads those of names that are modules of the image (the
// others are built into the kernel) and waits for them, whoever loads
// them.
func (d *Daemon) needModules(ctx context.Context, names ...string) {
	if d.mods != nil {
		d.mods.Need(ctx, "boot", names...)
	}
}

// waitProfileModules waits until the profile's modules of the initramfs
// that drive no device are loaded, at the boot's priority.
func (d *Daemon) waitProfileModules(ctx context.Context) {
	d.needModules(ctx, d.modsEarly...)
}

// waitDevices waits until the drivers of the devices present at boot are
// loaded, for why (logged when it has to wait; "": the boot's order).
func (d *Daemon) waitDevices(why string) {
	if d.devices == nil {
		return
	}
	select {
	case <-d.devices:
		return
	default:
	}
	if why != "" {
		d.opts.Log.Info("waiting for the drivers of the devices present", "because", why)
		// The boot waits for every driver: they load at its priority.
		d.mods.Hurry()
	}
	<-d.devices
}

// loadSystemModules loads the modules of the system image once it is
// mounted: those that load firmware from it (GPUs, Wi-Fi, sound) and
// others not needed to get there.
func (d *Daemon) loadSystemModules(ctx context.Context) {
	if d.mods == nil {
		return
	}
	start := time.Now()
	n := d.mods.SystemMounted(ctx, d.modsNow)
	d.opts.Log.Info("system image modules loaded", "loaded", n, "duration", time.Since(start).Round(time.Millisecond))
}

// servicesLine is the console summary of the supervised services.
// record notes a problem met while the host came up; it is in the
// health line, the API's status, and the log.
func (d *Daemon) record(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.opts.Log.Error("degraded: " + msg)
	d.recordedMu.Lock()
	d.recorded = append(d.recorded, msg)
	d.recordedMu.Unlock()
}

// problems is Problems for this host now: the data partition's state, what
// was recorded, and the supervised services.
func (d *Daemon) problems() []string {
	d.recordedMu.Lock()
	rec := append([]string(nil), d.recorded...)
	low := d.lowSpace
	d.recordedMu.Unlock()
	if d.data != nil && !d.data.Mounted {
		rec = append([]string{"data partition not mounted: " + d.data.Problem}, rec...)
	}
	if low != "" {
		rec = append(rec, low)
	}
	rec = append(rec, d.kernel.Problems()...)
	if d.vms != nil {
		rec = append(rec, d.vms.Problems()...)
	}
	if d.data != nil && d.data.Mounted && d.data.TPMProblem != "" {
		// The profile asks for the TPM: without it every boot waits for
		// someone to type the recovery key.
		rec = append([]string{"the TPM does not unlock the data partition: " + d.data.TPMProblem}, rec...)
	}
	return Problems(rec, d.sup.Status())
}

func servicesLine(st []supervise.Status) string {
	if len(st) == 0 {
		return "thinhost: services: none supervised"
	}
	var parts []string
	for _, s := range st {
		parts = append(parts, fmt.Sprintf("%s %s", s.Name, s.State))
	}
	return api.ServicesPrefix + strings.Join(parts, ", ")
}

// sleep suspends the host with its guests paused (Sleeper), and says on
// the console when it is back.
func (d *Daemon) sleep(ctx context.Context) {
	s := &power.Sleeper{
		Log: d.opts.Log,
		PauseGuests: func(context.Context) []string {
			if d.vms == nil {
				return nil
			}
			return d.vms.PauseAll()
		},
		ResumeGuests: func(_ context.Context, names []string) {
			if d.vms != nil {
				d.vms.ResumeAll(names)
			}
		},
		Sync:    unix.Sync,
		Suspend: power.Suspend,
	}
	if err := s.Sleep(ctx); err != nil {
		d.record("%v", err)
		fmt.Fprintf(d.opts.Console, "thinhost: %v\n", err)
		return
	}
	fmt.Fprintln(d.opts.Console, "thinhost: resumed")
}

// watchDataSpace reads the data partition's free space every 30 seconds,
// and says on the console when it runs low (before QEMU pauses a guest
// that finds it full) and when it is back; meanwhile the host's health
// says so.
func (d *Daemon) watchDataSpace(ctx context.Context) {
	var s storage.SpaceState
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(storage.DataDir, &st); err == nil {
			free, total := int64(st.Bavail)*st.Bsize, int64(st.Blocks)*st.Bsize
			if msg, low := s.Observe(free, total); msg != "" {
				fmt.Fprintln(d.opts.Console, "thinhost: "+msg)
				d.opts.Log.Warn("data partition space", "free", free, "total", total, "low", low)
				d.recordedMu.Lock()
				d.lowSpace = ""
				if low {
					d.lowSpace = msg
				}
				d.recordedMu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readCPUTimes reads /proc/stat's CPU times (zero if it cannot).
func readCPUTimes() cpuTimes {
	b, _ := os.ReadFile("/proc/stat")
	t, _ := parseCPUTimes(string(b))
	return t
}

// readProcs reads the CPU times of every process (procCPU).
func readProcs() []procCPU {
	entries, _ := os.ReadDir("/proc")
	var out []procCPU
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if p, ok := parseProcStat(string(b)); ok {
			out = append(out, p)
		}
	}
	return out
}
