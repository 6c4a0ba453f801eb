package layout

import "strings"

// deviceBuses are the modalias prefixes of devices the kernel reports
// (with a modalias file under /sys/devices and in uevents). A module with
// an alias on one of them drives hardware; other aliases ("fs-ext4",
// "char-major-10-200", "rtnl-link-bridge", "vfio_pci:...") name what it
// provides, not a device.
var deviceBuses = []string{"pci:", "usb:", "acpi:", "acpi*:", "hid:", "virtio:", "scsi:", "platform:", "of:",
	"input:", "serio:", "pnp:", "dmi:", "cpu:", "x86cpu:", "i2c:", "spi:", "sdio:", "mmc:", "hdaudio:", "wmi:",
	"mei:", "ieee1394:", "pcmcia:", "mdio:", "auxiliary:", "ishtp:", "ssb:", "bcma:", "sdw:", "typec:", "thunderbolt:",
	"nd:", "serial_base:", "nvmem:", "rpmsg:", "sound:", "tbsvc:", "ccw:", "vmbus:", "hv_vmbus:"}

// DeviceAlias reports whether a module's alias pattern names devices the
// kernel reports: a module with one drives hardware, and hostd loads it
// when such a device is there; a module without one loads because the
// profile names it, or a module that needs it loads.
func DeviceAlias(pattern string) bool {
	for _, b := range deviceBuses {
		if strings.HasPrefix(pattern, b) {
			return true
		}
	}
	return false
}
