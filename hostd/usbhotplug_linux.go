package hostd

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/thinhost/thinhost/hostd/modules"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/vm"
)

// usbPlugs gives USB devices plugged in while the host runs to the guest
// the profile names for them (RouteUSB), and takes them back when they
// are unplugged.
type usbPlugs struct {
	d *Daemon
	// vms is the guests' manager once it exists.
	vms atomic.Pointer[vm.Manager]
	// queue holds the uevents for the worker: attaching waits for QMP,
	// which the uevent reader must not.
	queue chan modules.Uevent
	mu    sync.Mutex
	// given maps a device path to the guest and QEMU device id it went to.
	given map[string][2]string
}

func newUSBPlugs(d *Daemon) *usbPlugs {
	u := &usbPlugs{d: d, queue: make(chan modules.Uevent, 256), given: map[string][2]string{}}
	go func() {
		for ev := range u.queue {
			u.uevent(ev)
		}
	}()
	return u
}

// enqueue hands a uevent to the worker (USB devices only); never blocks.
func (u *usbPlugs) enqueue(ev modules.Uevent) {
	if ev.Env["SUBSYSTEM"] != "usb" || ev.Env["DEVTYPE"] != "usb_device" {
		return
	}
	select {
	case u.queue <- ev:
	default:
		u.d.opts.Log.Warn("usb uevents lost: too many at once", "device", ev.Env["DEVPATH"])
	}
}

// uevent handles one kernel uevent: USB devices added and removed.
func (u *usbPlugs) uevent(ev modules.Uevent) {
	d := u.d
	vms := u.vms.Load()
	if vms == nil {
		return
	}
	switch ev.Action {
	case "add":
		dev, ok := USBFromUevent(ev)
		if !ok {
			return
		}
		boot, _, _ := storage.BootUSB()
		vm, why := RouteUSB(dev, d.opts.Config.VMs, boot)
		if vm == "" {
			d.opts.Log.Info("usb device plugged in, kept by the host", "usb", dev.ID(), "device", dev.DevPath, "why", why)
			return
		}
		id := fmt.Sprintf("hotplug-%d-%d", dev.Bus, dev.Addr)
		shows, err := vms.AttachUSB(vm, dev.Bus, dev.Addr, id)
		if err != nil {
			d.opts.Log.Warn("usb device plugged in: not given", "usb", dev.ID(), "vm", vm, "err", err)
			fmt.Fprintf(d.opts.Console, "thinhost: usb %s plugged in: not given to vm %s: %v\n", dev.ID(), vm, err)
			return
		}
		u.mu.Lock()
		u.given[dev.DevPath] = [2]string{vm, id}
		u.mu.Unlock()
		d.opts.Log.Info("usb device plugged in: given to a guest", "usb", dev.ID(), "vm", vm, "guest_sees", shows)
		fmt.Fprintf(d.opts.Console, "thinhost: usb %s plugged in: given to vm %s (%s)\n", dev.ID(), vm, shows)
	case "remove":
		path := ev.Env["DEVPATH"]
		u.mu.Lock()
		g, ok := u.given[path]
		delete(u.given, path)
		u.mu.Unlock()
		if !ok {
			return
		}
		if err := vms.DetachUSB(g[0], g[1]); err != nil {
			d.opts.Log.Warn("usb device unplugged", "vm", g[0], "err", err)
			return
		}
		d.opts.Log.Info("usb device unplugged: taken from its guest", "vm", g[0], "device", path)
		fmt.Fprintf(d.opts.Console, "thinhost: usb device unplugged: taken from vm %s\n", g[0])
	}
}
