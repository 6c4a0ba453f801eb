package hostd

import (
	"context"
	"fmt"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout"
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
	host := vm.Host{Root: SystemDir, CPUs: runtime.NumCPU(), MemBytes: readMeminfo().Total, CPUVendor: vm.CPUVendor(),
		Panel: PanelMode("/sys")}
	var notes []string
	ok, why := kvm.Probe(ctx, func(ctx context.Context, args ...string) *exec.Cmd {
		return systemCommand(ctx, vm.QEMUBinary, args...)
	}, SystemDir+vm.OVMFCode)
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
	d.vms = vm.NewManager(&vm.Manager{
		Log: log, Sup: d.sup, Host: host,
		Program:  systemProgram,
		Env:      systemEnv(),
		StateDir: filepath.Join(DataDir, "vms"), RunDir: "/run/vms",
		Notes: notes,
		Helper: func(g guestdrive.Guest) (map[string]string, error) {
			return guestdrive.Files(guestdrive.Input{Config: cfg, Guest: g, SharePassword: d.sharePW})
		},
		Panel: d.panel,
		Protected: func() []string {
			if id, ok := bootDiskUSB(); ok {
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
}

// linkPartition makes /dev/disk/by-partlabel/LABEL point at the partition,
// as udev would: hostd runs without udev.
func linkPartition(ctx context.Context, label string) error {
	part, _, err := findPartition(ctx, label, 5*time.Second)
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
