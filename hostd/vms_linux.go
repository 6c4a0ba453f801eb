package hostd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/thinhost/thinhost/hostd/console"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/guestlink"
	"github.com/thinhost/thinhost/hostd/keyboard"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/kvm"
)

// setupVMs prepares the guests: their media partitions under
// /dev/disk/by-partlabel, the host's facts (KVM usable or not), and the
// manager. Guests need the data partition for their disks.
func (d *Daemon) setupVMs(ctx context.Context) {
	cfg := d.opts.Config
	log := d.opts.Log
	if len(cfg.VMs) == 0 {
		return
	}
	if d.data == nil || !d.data.Mounted {
		d.record("guests not started: their disks live on the data partition, which is not mounted")
		return
	}
	for _, v := range cfg.VMs {
		for _, m := range []struct{ kind, dev string }{{"install", v.InstallMedia}, {"drivers", v.Drivers}} {
			if m.dev == "" {
				continue
			}
			if err := linkPartition(ctx, layout.MediaName(v.Name, m.kind)); err != nil {
				d.record("vm %s: its %s media: %v", v.Name, m.kind, err)
			}
		}
	}
	host := vm.Host{Root: sysimage.Dir, CPUs: runtime.NumCPU(), MemBytes: readMeminfo().Total, CPUVendor: vm.CPUVendor(),
		Panel: console.PanelMode("/sys"), Vhost: d.link != nil && d.link.Vhost()}
	var notes []string
	if card, ok := d.soundCard(); ok {
		host.Sound = card.ALSA()
		fmt.Fprintf(d.opts.Console, "thinhost: sound: guests play on %s\n", card)
		d.startMixer(ctx)
	}
	ok, why := kvm.Probe(ctx, func(ctx context.Context, args ...string) *exec.Cmd {
		return sysimage.Command(ctx, vm.QEMUBinary, args...)
	}, sysimage.Dir+vm.OVMFCode)
	host.KVM = ok
	if ok {
		log.Info("guests run with KVM")
	}
	if !ok {
		note := "KVM is not usable (" + why + "): guests run emulated with TCG, many times slower"
		notes = append(notes, note)
		log.Warn("guests without KVM", "why", why)
		fmt.Fprintln(d.opts.Console, "thinhost: "+note)
	}
	d.holdPanelKeys(ctx)
	d.vms = vm.NewManager(&vm.Manager{
		Log: log, Sup: d.sup, Host: host,
		Program:  sysimage.Program,
		Env:      sysimage.Env(),
		StateDir: layout.VMStateDir, RunDir: layout.VMRunDir,
		Notes: notes,
		Helper: func(g guestdrive.Guest) (map[string]string, error) {
			// Read at each start, not kept: 11 MB that only the drive
			// needs.
			ctl, err := os.ReadFile(sysimage.Dir + layout.GuestCtlPath)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("the THINHOST drive goes without thinhost.exe", "err", err)
			}
			return guestdrive.Files(guestdrive.Input{Config: cfg, Guest: g, SharePassword: d.sharePW, HostAddress: d.guestHost(), Ctl: string(ctl)})
		},
		Link:  func(name string) (string, bool) { return d.link.Tap(name) },
		Panel: d.panel,
		Protected: func() []string {
			if id, ok := storage.BootDiskUSB(); ok {
				return []string{id}
			}
			return nil
		},
		Notify: func(line string) { fmt.Fprintln(d.opts.Console, "thinhost: "+line) },
		ShutByItself: func(name string) {
			for _, v := range cfg.VMs {
				if v.Name == name && v.OnShutdown == "poweroff" {
					select {
					case d.guestOff <- name:
					default:
					}
				}
			}
		},
	}, cfg.VMs)
	d.usb.vms.Store(d.vms)
}

// holdPanelKeys makes the virtual keyboard a guest on the panel reads,
// with the host key combination, before the first such guest starts.
func (d *Daemon) holdPanelKeys(ctx context.Context) {
	cfg := d.opts.Config
	if !slices.ContainsFunc(cfg.VMs, func(v config.VM) bool { return v.Display == "sdl" }) {
		return
	}
	if d.mods != nil {
		d.mods.Load(ctx, "panel", []string{"uinput"})
	}
	if err := d.panel.HoldKeys(cfg.ShellPasswordHash); err != nil {
		d.opts.Log.Warn("the guests on the panel read the keyboards themselves: no host key combination", "err", err)
		return
	}
	d.opts.Log.Info("the keyboards go to the guest on the panel through hostd", "host_keys", keyboard.Combo)
}

// linkPartition makes /dev/disk/by-partlabel/LABEL point at the partition,
// as udev would: hostd runs without udev.
func linkPartition(ctx context.Context, label string) error {
	part, _, err := storage.FindPartition(ctx, label, 5*time.Second)
	if err != nil {
		return err
	}
	dir := "/dev/disk/by-partlabel"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, label)
	_ = os.Remove(link)
	return os.Symlink("../../"+part, link)
}

// VM implements api.Backend.
func (d *Daemon) VM(ctx context.Context, name, action string) (string, error) {
	if d.vms == nil {
		return "", fmt.Errorf("vm %q: %w (this host runs no guests)", name, vm.ErrUnknown)
	}
	// Actions outlive the request: a stop waits for the guest's shutdown.
	return d.vms.Do(context.WithoutCancel(ctx), name, action)
}

func (d *Daemon) vmStatus() []vm.Status {
	if d.vms == nil {
		return []vm.Status{}
	}
	return d.vms.Status()
}

// setupGuestLink makes the guests' host-only link when a guest has a
// network (a bridge, a tap each, DHCP); without it the guests reach the
// host through QEMU's user network alone, and the health line says why.
func (d *Daemon) setupGuestLink() {
	var names []string
	need := false
	for _, v := range d.opts.Config.VMs {
		names = append(names, v.Name)
		need = need || v.Network == "user"
	}
	if !need {
		return
	}
	l, err := guestlink.Setup(d.opts.Log, names)
	if err != nil {
		d.record("no host-only link for the guests (they reach the host through QEMU's NAT at %s): %v", guestdrive.NATHostAddress, err)
		return
	}
	d.link = l
}

// linkAddr is the host's address on the guests' link with its mask; nil
// without the link.
func (d *Daemon) linkAddr() *net.IPNet {
	if d.link == nil {
		return nil
	}
	return &net.IPNet{IP: d.link.Host, Mask: d.link.Net.Mask}
}

// guestHost is the host's address as the guests should use it: on the
// link when there is one, QEMU's NAT otherwise.
func (d *Daemon) guestHost() string {
	if d.link != nil {
		return d.link.Host.String()
	}
	return guestdrive.NATHostAddress
}
