package hostd

import (
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/modules"
	"github.com/thinhost/thinhost/images/layout/config"
)

func TestUSBFromUevent(t *testing.T) {
	ev, ok := modules.ParseUevent([]byte("add@/devices/pci0000:00/0000:00:04.0/usb3/3-2\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/usb3/3-2\x00SUBSYSTEM=usb\x00DEVTYPE=usb_device\x00PRODUCT=46f4/1/0\x00TYPE=0/0/0\x00BUSNUM=003\x00DEVNUM=004\x00"))
	if !ok {
		t.Fatal("not parsed")
	}
	d, ok := USBFromUevent(ev)
	if !ok || d.Bus != 3 || d.Addr != 4 || d.ID() != "46f4:0001" || d.Class != 0 || !strings.HasSuffix(d.DevPath, "/3-2") {
		t.Errorf("device %+v %v", d, ok)
	}
	for _, bad := range []map[string]string{
		{"SUBSYSTEM": "usb", "DEVTYPE": "usb_interface", "DEVPATH": "/d", "BUSNUM": "1", "DEVNUM": "2", "PRODUCT": "1/2/3"},
		{"SUBSYSTEM": "block", "DEVTYPE": "usb_device", "DEVPATH": "/d", "BUSNUM": "1", "DEVNUM": "2", "PRODUCT": "1/2/3"},
		{"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVPATH": "/d", "BUSNUM": "x", "DEVNUM": "2", "PRODUCT": "1/2/3"},
		{"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVPATH": "/d", "BUSNUM": "1", "DEVNUM": "999", "PRODUCT": "1/2/3"},
		{"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVPATH": "/d", "BUSNUM": "1", "DEVNUM": "2", "PRODUCT": "12345/2/3"},
	} {
		if d, ok := USBFromUevent(modules.Uevent{Action: "add", Env: bad}); ok {
			t.Errorf("%v read as %+v", bad, d)
		}
	}
}

func TestRouteUSB(t *testing.T) {
	boot := "/devices/pci0000:00/0000:00:04.0/usb3/3-1/3-1.2"
	vms := []config.VM{{Name: "linux"}, {Name: "windows", USB: []string{"06cb:00bd"}, USBHotplug: true}}
	dev := func(path string, vendor, product uint16, class int) USBDevice {
		return USBDevice{DevPath: path, Bus: 3, Addr: 5, Vendor: vendor, Product: product, Class: class}
	}
	for _, c := range []struct {
		name   string
		d      USBDevice
		vm     string
		reason string
	}{
		{"a stick", dev("/devices/pci0000:00/0000:00:04.0/usb3/3-2", 0x46f4, 1, 0), "windows", ""},
		{"the boot stick", dev(boot, 0x0781, 0x5581, 0), "", "boot disk"},
		{"the boot stick's hub", dev("/devices/pci0000:00/0000:00:04.0/usb3/3-1", 0x05e3, 0x0610, 0), "", "boot disk"},
		{"a hub", dev("/devices/pci0000:00/0000:00:04.0/usb3/3-3", 0x05e3, 0x0610, 9), "", "a hub"},
		{"named by a guest", dev("/devices/pci0000:00/0000:00:04.0/usb3/3-4", 0x06cb, 0x00bd, 0), "", "QEMU attaches it"},
		{"a neighbour of the boot stick's port", dev("/devices/pci0000:00/0000:00:04.0/usb3/3-1/3-1.3", 0x46f4, 1, 0), "windows", ""},
	} {
		vm, why := RouteUSB(c.d, vms, boot)
		if vm != c.vm || !strings.Contains(why, c.reason) {
			t.Errorf("%s: %q %q, want %q %q", c.name, vm, why, c.vm, c.reason)
		}
	}
	if vm, why := RouteUSB(dev("/d/3-2", 1, 2, 0), vms[:1], ""); vm != "" || !strings.Contains(why, "usb_hotplug") {
		t.Errorf("no guest takes them: %q %q", vm, why)
	}
}
