package profiles

import (
	"slices"
	"sort"
)

// A DriverGroup is a part of a driver set: kernel modules for one kind of
// hardware. Names a kernel does not have are skipped (a set covers many
// kernel releases: xe exists from 6.8 on), so a set may name drivers of
// newer kernels.
type DriverGroup struct {
	Name string
	// Early groups go into the initramfs: what finds and mounts the
	// system image and the data partition (storage, USB, filesystems), the
	// keyboard for the debug shell, and wired networks (configured before
	// the system image is mounted). The others (GPUs, sound, Wi-Fi:
	// drivers that load firmware from the system image) go into the
	// system image and load once it is mounted.
	Early   bool
	Modules []string
	// OnRequest are shipped but loaded only when the kernel asks for them
	// (through the image's modprobe): iwlwifi asks for iwlmvm once it knows
	// the card's firmware API.
	OnRequest []string
}

// Driver groups, by what they drive. Device drivers load only for
// devices present (hostd matches each device's modalias against the
// image's modules.alias), so a set may be generous.
var (
	groupBase = DriverGroup{Name: "filesystems", Early: true, Modules: []string{
		"vfat", "nls_cp437", "nls_iso8859_1", "nls_ascii", "ext4", "squashfs", "efivarfs",
	}}
	groupStorage = DriverGroup{Name: "storage", Early: true, Modules: []string{
		// NVMe, SATA (AHCI) and Intel VMD (RAID mode) disks; USB sticks
		// (xHCI/EHCI, USB mass storage with UAS or BOT, SCSI disks); SD
		// card readers.
		"nvme", "ahci", "vmd", "xhci_pci", "ehci_pci", "uhci_hcd", "ohci_pci",
		"usb_storage", "uas", "sd_mod", "sdhci_pci", "sdhci_acpi", "mmc_block", "rtsx_pci_sdmmc",
	}}
	groupInput = DriverGroup{Name: "input", Early: true, Modules: []string{
		// USB keyboards and mice, I2C touchpads and touchscreens behind
		// Intel LPSS or AMD's I2C controllers (with their GPIO pins for
		// interrupts), PS/2 touchpads, evdev for the power button.
		"usbhid", "hid_generic", "hid_multitouch", "i2c_hid_acpi", "hid_apple", "hid_logitech_dj", "hid_logitech_hidpp",
		"intel_lpss_pci", "intel_lpss_acpi", "i2c_designware_platform", "i2c_designware_pci",
		"pinctrl_sunrisepoint", "pinctrl_cannonlake", "pinctrl_icelake", "pinctrl_tigerlake", "pinctrl_alderlake",
		"pinctrl_meteorlake", "pinctrl_amd", "psmouse", "evdev",
	}}
	groupEthernet = DriverGroup{Name: "ethernet", Early: true, Modules: []string{
		// Intel and Realtek Ethernet, USB and USB-C dock adapters.
		"e1000e", "igc", "igb", "r8169", "tg3", "r8152", "cdc_ether", "cdc_ncm", "ax88179_178a",
	}}
	groupGPU = DriverGroup{Name: "gpu", Modules: []string{
		// Intel (i915, xe), AMD (amdgpu) and QEMU's standard VGA (bochs).
		"i915", "xe", "amdgpu", "bochs",
	}}
	groupSound = DriverGroup{Name: "sound", Modules: []string{
		// HD Audio with its codecs; Sound Open Firmware DSPs of Intel and
		// AMD laptops with their machine drivers.
		"snd_hda_intel", "snd_hda_codec_realtek", "snd_hda_codec_hdmi", "snd_hda_codec_conexant",
		"snd_hda_codec_generic", "snd_hda_codec_cirrus",
		"snd_sof_pci_intel_cnl", "snd_sof_pci_intel_icl", "snd_sof_pci_intel_tgl", "snd_sof_pci_intel_mtl",
		"snd_sof_pci_intel_lnl", "snd_sof_amd_rembrandt", "snd_sof_amd_acp63", "snd_pci_ps",
		"snd_soc_skl_hda_dsp", "snd_soc_sof_sdw", "snd_soc_sof_rt5682", "snd_soc_dmic",
	}}
	groupWireless = DriverGroup{Name: "wireless", Modules: []string{
		// Wi-Fi of Intel, MediaTek, Realtek and Qualcomm; Bluetooth.
		"iwlwifi", "mt7921e", "mt7925e", "rtw89_8852be", "rtw89_8852ce", "rtw88_8822ce", "rtw88_8821ce",
		"ath11k_pci", "ath12k", "ath10k_pci", "btusb",
	}, OnRequest: []string{"iwlmvm"}}
	groupPlatform = DriverGroup{Name: "platform", Modules: []string{
		// ACPI battery, AC adapter, lid and buttons, backlight, thermal
		// zones and fans; vendors' hotkey drivers; USB-C and Thunderbolt.
		"battery", "ac", "button", "video", "thermal", "fan", "intel_hid", "intel_vbtn",
		"thinkpad_acpi", "ideapad_laptop", "asus_nb_wmi", "hp_wmi", "dell_wmi", "ucsi_acpi", "thunderbolt",
	}}
	groupVirtualization = DriverGroup{Name: "virtualization", Modules: []string{
		// KVM (whichever matches the CPU), vhost and tap networking,
		// bridges, and VFIO for device passthrough.
		"kvm_intel", "kvm_amd", "vhost_net", "tun", "bridge", "vfio_pci",
	}}
	groupVirtio = DriverGroup{Name: "virtio", Early: true, Modules: []string{
		// QEMU's virtio machine: disk, SCSI, network, entropy, input.
		"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", "virtio_rng", "virtio_input",
	}}
	groupVirtioGPU = DriverGroup{Name: "virtio-gpu", Modules: []string{"virtio_gpu"}}
)

// HardwareSets are the driver sets a profile chooses with
// host.kernel.hardware. "generic", the default, covers laptops and QEMU's
// virtio machine alike; "none" ships only what the host itself needs
// (filesystems), for profiles that list every module.
var HardwareSets = map[string][]DriverGroup{
	"laptop": {groupBase, groupStorage, groupInput, groupEthernet, groupGPU, groupSound, groupWireless,
		groupPlatform, groupVirtualization},
	"virtio": {groupBase, groupVirtio, groupVirtioGPU, groupVirtualization},
	"generic": {groupBase, groupStorage, groupInput, groupEthernet, groupVirtio, groupGPU, groupVirtioGPU,
		groupSound, groupWireless, groupPlatform, groupVirtualization},
	"none": nil,
}

// DefaultHardware is the driver set of a profile that names none.
const DefaultHardware = "generic"

// HardwareNames are the set names, sorted.
func HardwareNames() []string {
	var out []string
	for n := range HardwareSets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Drivers are the modules a kernel block asks for: the driver set's
// groups, the profile's own modules, minus what it excludes.
type Drivers struct {
	// Early and Late are the set's modules (optional: a kernel may lack
	// some), early ones in the initramfs, late ones in the system image.
	Early, Late []string
	// OnRequest are the set's modules that load only when the kernel asks
	// for them; early or late as their group.
	OnRequest []string
	// Listed are the profile's own modules (required: a missing one is an
	// error). They go into the initramfs unless they load firmware.
	Listed []string
	// EarlyOnRequest are the early groups' OnRequest modules.
	EarlyOnRequest []string
}

// HardwareSet is the driver set the kernel block names, or
// DefaultHardware.
func (k *Kernel) HardwareSet() string {
	if k.Hardware == "" {
		return DefaultHardware
	}
	return k.Hardware
}

// Drivers resolves the kernel block's hardware, modules and
// exclude_modules.
func (k *Kernel) Drivers() Drivers {
	var d Drivers
	excluded := func(m string) bool { return slices.Contains(k.ExcludeModules, m) }
	seen := map[string]bool{}
	for _, m := range k.Modules {
		if !excluded(m) && !seen[m] {
			seen[m] = true
			d.Listed = append(d.Listed, m)
		}
	}
	for _, g := range HardwareSets[k.HardwareSet()] {
		for _, m := range g.Modules {
			if excluded(m) || seen[m] {
				continue
			}
			seen[m] = true
			if g.Early {
				d.Early = append(d.Early, m)
			} else {
				d.Late = append(d.Late, m)
			}
		}
		for _, m := range g.OnRequest {
			if excluded(m) || seen[m] {
				continue
			}
			seen[m] = true
			d.OnRequest = append(d.OnRequest, m)
			if g.Early {
				d.EarlyOnRequest = append(d.EarlyOnRequest, m)
			}
		}
	}
	return d
}
