package hostd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/hostd/modules"
	"github.com/thinhost/thinhost/images/layout/config"
)

// USBDevice is a USB device the kernel announced (a uevent of SUBSYSTEM
// usb, DEVTYPE usb_device).
type USBDevice struct {
	// DevPath is its kernel device path (/devices/...), which names its
	// port; Bus and Addr where libusb and QEMU find it.
	DevPath         string
	Bus, Addr       int
	Vendor, Product uint16
	// Class is its device class (9: a hub; 0: per interface).
	Class int
}

// ID is "vvvv:pppp", as lsusb prints it.
func (d USBDevice) ID() string { return fmt.Sprintf("%04x:%04x", d.Vendor, d.Product) }

// USBFromUevent reads a USB device from its uevent: BUSNUM, DEVNUM,
// PRODUCT ("vid/pid/bcd" in hex) and TYPE ("class/subclass/protocol").
// Interfaces and other subsystems are not devices: false.
func USBFromUevent(ev modules.Uevent) (USBDevice, bool) {
	e := ev.Env
	if e["SUBSYSTEM"] != "usb" || e["DEVTYPE"] != "usb_device" || e["DEVPATH"] == "" {
		return USBDevice{}, false
	}
	d := USBDevice{DevPath: e["DEVPATH"]}
	var err error
	if d.Bus, err = strconv.Atoi(e["BUSNUM"]); err != nil || d.Bus < 1 || d.Bus > 255 {
		return USBDevice{}, false
	}
	if d.Addr, err = strconv.Atoi(e["DEVNUM"]); err != nil || d.Addr < 1 || d.Addr > 127 {
		return USBDevice{}, false
	}
	p := strings.Split(e["PRODUCT"], "/")
	if len(p) < 2 {
		return USBDevice{}, false
	}
	v, err1 := strconv.ParseUint(p[0], 16, 16)
	pr, err2 := strconv.ParseUint(p[1], 16, 16)
	if err1 != nil || err2 != nil {
		return USBDevice{}, false
	}
	d.Vendor, d.Product = uint16(v), uint16(pr)
	if t := strings.Split(e["TYPE"], "/"); len(t) > 0 {
		d.Class, _ = strconv.Atoi(t[0])
	}
	return d, true
}

// RouteUSB says which guest takes USB device d, plugged in while the host
// runs, and why none does: never a hub, never the host's boot disk or the
// hub it hangs on (boot is its device path); a device a guest names in its
// usb list is QEMU's own to attach (its usb-host device waits for it);
// anything else goes to the first guest with usb_hotplug.
func RouteUSB(d USBDevice, vms []config.VM, boot string) (vm, why string) {
	switch {
	case d.Class == 9:
		return "", "a hub"
	case boot != "" && (d.DevPath == boot || strings.HasPrefix(boot, d.DevPath+"/")):
		return "", "the host's boot disk, or the hub it hangs on"
	}
	for _, v := range vms {
		for _, u := range v.USB {
			if strings.EqualFold(u, d.ID()) {
				return "", "vm " + v.Name + " names it: QEMU attaches it"
			}
		}
	}
	for _, v := range vms {
		if v.USBHotplug {
			return v.Name, ""
		}
	}
	return "", "no guest takes devices plugged in (usb_hotplug)"
}
