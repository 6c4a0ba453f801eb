package profiles

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Validation: the rules that look at several decoded values together,
// apart from decoding (as Packer's hcl2template keeps them), which reads
// one attribute at a time. A diagnostic points at the attribute it is
// about, so its text does not repeat the block's name.

// validate checks a decoded vm block's values together: what the guest's
// OS needs, what its firmware allows. A block that did not decode is not
// checked: its values are defaults and half-read.
func (vm *VM) validate() hcl.Diagnostics {
	at := vm.at
	if !at.decoded {
		return nil
	}
	var diags hcl.Diagnostics
	bad := func(a *hcl.Attribute, summary, detail string) {
		r := vm.DeclRange
		if a != nil {
			r = a.Expr.Range()
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r})
	}
	windows := strings.HasPrefix(vm.OS, "windows")
	if vm.OS == "windows11" {
		if !vm.TPM {
			bad(at.tpm, "Windows 11 needs a TPM", "Windows 11 setup refuses to install without TPM 2.0: set tpm = true (hostd runs swtpm for it).")
		}
		if vm.Firmware != "uefi-secureboot" {
			bad(at.firmware, "Windows 11 needs Secure Boot", "Windows 11 setup requires UEFI with Secure Boot: set firmware = \"uefi-secureboot\".")
		}
		if vm.MemoryPercent == 0 && vm.MemoryBytes < Windows11MinMemory {
			bad(at.memory, "Too little memory for Windows 11", fmt.Sprintf("Windows 11 needs at least 4GiB of memory; %s is set.", FormatSize(vm.MemoryBytes)))
		}
		if !vm.CPUsAll && vm.CPUs < 2 {
			bad(at.cpus, "Too few CPUs for Windows 11", "Windows 11 needs at least 2 CPUs.")
		}
		if vm.Disk.Size < Windows11MinDisk {
			bad(at.diskSize, "Disk too small for Windows 11", fmt.Sprintf("Windows 11 needs a disk of at least 64GiB; %s is set.", FormatSize(vm.Disk.Size)))
		}
	}
	if windows && vm.Firmware == "bios" {
		bad(at.firmware, "Windows guests boot UEFI", "firmware \"bios\" is for Linux guests; Windows guests use \"uefi\" or \"uefi-secureboot\".")
	}
	if direct := firstSet(at.kernel, at.initrd, at.cmdline); windows && direct != nil {
		bad(direct, "Direct kernel boot is for Linux guests", "kernel, initrd and cmdline boot a Linux kernel directly; a Windows guest boots from its disk or install_media.")
	}
	if extra := firstSet(at.initrd, at.cmdline); !windows && vm.Kernel == "" && extra != nil {
		bad(extra, "initrd or cmdline without kernel", "initrd and cmdline go with a kernel artifact: set kernel too.")
	}
	if vm.TPM && vm.Firmware == "bios" {
		bad(at.tpm, "TPM needs UEFI here", "The TPM is offered to UEFI guests; use firmware \"uefi\" or drop tpm.")
	}
	if wb := at.windows; wb != nil {
		rng := wb.DefRange
		switch {
		case !windows:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "windows block on a Linux guest", Subject: &rng,
				Detail: fmt.Sprintf("The windows block tells Windows setup what to do; this guest's os is %q. Remove the block.", vm.OS)})
		case vm.InstallMedia == "":
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "windows block without install_media", Subject: &rng,
				Detail: "The windows block makes the install from install_media unattended: set install_media to the Windows ISO's artifact (and drivers to virtio-win's), or remove the block."})
		}
	}
	if vm.CPUsAllBut > 254 {
		bad(at.cpus, "Invalid cpus", "all-but-N leaves N CPUs to the host; N must be below 255.")
	}
	return diags
}

// firstSet is the first of attrs that is set, or nil.
func firstSet(attrs ...*hcl.Attribute) *hcl.Attribute {
	for _, a := range attrs {
		if a != nil {
			return a
		}
	}
	return nil
}

// validate checks the decoded profile's blocks together: what Wi-Fi,
// services and the kernel need of the packages block, what Secure Boot
// allows.
func (prof *Profile) validate() hcl.Diagnostics {
	var diags hcl.Diagnostics
	errAt := func(rng hcl.Range, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng})
	}
	if prof.Wifi != nil && !prof.Packages.Given {
		errAt(prof.Wifi.DeclRange, "Wi-Fi without packages",
			"The host joins Wi-Fi with Debian's wpa_supplicant, which comes from the archive: add a packages block (packages {} takes Debian 12's defaults).")
	}
	if prof.Wifi != nil && prof.Storage.DataDisk == DataDiskInternal {
		for _, n := range prof.Wifi.Networks {
			if n.PSK != "" {
				errAt(n.DeclRange, "Wi-Fi passphrase with an internal data disk",
					"A profile's passphrases travel to the host on the stick's empty data partition, which hostd takes and clears at the first boot; with data_disk = \"internal\" hostd never touches that partition, so the passphrase would stay on the stick in clear. Leave psk out and give it once on the host: thinhost ctl wifi connect "+n.Name+" --passphrase-stdin (it is kept on the internal disk's data partition).")
				break
			}
		}
	}
	if prof.Boot.SecureBoot == SecureBootStock && prof.Host.Kernel.Artifact != "" {
		rng := prof.Host.Kernel.Range
		if prof.Boot.DeclRange.Filename != "" {
			rng = prof.Boot.DeclRange
		}
		errAt(rng, "Secure Boot needs Debian's signed kernel",
			"secure_boot = \"stock\" boots only a kernel Debian signed, from the packages block; a kernel artifact is not signed for it. Take the kernel from the packages block, or set secure_boot = \"off\" in a boot block.")
	}
	if prof.Storage.TPM && prof.Boot.SecureBoot != SecureBootOwn {
		errAt(prof.Storage.TPMRange, "TPM unlocking needs your own Secure Boot keys",
			fmt.Sprintf("tpm = true seals the data partition's key to PCR 7, the firmware's Secure Boot state and keys. With secure_boot = %q that state is the same for whatever else boots (%s), so the TPM would hand the key to it. Use boot { secure_boot = \"own\"  keys = \"DIR\" } (thinhost keys DIR makes them): then only your signed loader and unified kernel image, initramfs and command line included, run with that state. Or leave tpm out and type a passphrase.",
				prof.Boot.SecureBoot, map[string]string{SecureBootOff: "any system, Secure Boot off", SecureBootStock: "any system Microsoft or Debian signed, and the initramfs and command line on the stick are not signed"}[prof.Boot.SecureBoot]))
	}
	if prof.Host.Kernel.Range.Filename != "" && prof.Host.Kernel.Artifact == "" && !prof.Packages.Given {
		errAt(prof.Host.Kernel.Range, "No kernel",
			"The kernel comes from Debian's archive (the packages block's kernel package, linux-image-amd64 by default) or from an artifact: add a packages block (packages {} takes Debian 12's defaults) or set artifact in the kernel block.")
	}
	if len(prof.Services) > 0 && !prof.Packages.Given {
		errAt(prof.Services[0].DeclRange, "Service without packages",
			"A service runs a program from a Debian package, which comes from the archive: add a packages block (packages {} takes Debian 12's defaults).")
	}
	return diags
}
