package builder

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/initramfs"
	"github.com/thinhost/thinhost/profiles"
)

// moduleSet is the closure of the modules the profile's kernel block
// asks for (its driver set, its own list, hostd's needs), split into the
// initramfs's and the system image's (MarkLate); nil for a kernel without
// modules.
func moduleSet(prof *profiles.Profile, kern *Kernel, log *slog.Logger) (*initramfs.ModuleSet, error) {
	k := prof.Host.Kernel
	drivers := k.Drivers()
	if kern.ModulesDir == "" {
		if len(k.Modules) > 0 {
			return nil, fmt.Errorf("kernel (%s): modules are listed but the kernel has no modules directory: set modules_dir", k.Range)
		}
		return nil, nil
	}
	required := withHostdModules(drivers.Listed, len(prof.Services) > 0)
	optional := append(append(append(append([]string(nil), drivers.Early...), drivers.Late...), drivers.OnRequest...), initramfs.Optional...)
	if prof.Storage.Encrypt {
		for _, m := range EncryptModules {
			if !contains(required, m) {
				required = append(required, m)
			}
		}
		optional = append(optional, EncryptOptional...)
	}
	if prof.Wifi != nil {
		optional = append(optional, WifiOptional...)
	}
	if onPanel(prof) {
		optional = append(optional, PanelOptional...)
	}
	mods, err := initramfs.Closure(kern.ModulesDir, kern.Release, required, optional)
	if err != nil {
		return nil, fmt.Errorf("kernel modules (%s): %w", k.Range, err)
	}
	// The initramfs carries what finds and mounts the system image and
	// the data partition; modules that load firmware wait for the system
	// image, where the firmware is.
	early := append(append(append(append([]string(nil), drivers.Early...), drivers.EarlyOnRequest...), initramfs.Optional...), EncryptOptional...)
	for _, r := range required {
		if m := mods.Module(r); m != nil && len(m.Firmware) == 0 {
			early = append(early, r)
		}
	}
	mods.MarkLate(early, layout.SystemDir+"/lib/modules/"+kern.Release)
	late := 0
	for _, m := range mods.Modules {
		if m.Late {
			late++
		}
	}
	log.Info("module closure", "hardware", k.HardwareSet(), "listed", len(drivers.Listed), "shipped", len(mods.Modules),
		"in_system_image", late, "builtin", len(mods.Builtin))
	return mods, nil
}

// lateModules are the system image's kernel modules (MarkLate), at the
// absolute paths modules.dep gives them, under /lib/modules/<release>.
func lateModules(mods *initramfs.ModuleSet, kern *Kernel) []images.SystemFile {
	if mods == nil {
		return nil
	}
	pkg, version, _ := strings.Cut(kern.Package, " ")
	var out []images.SystemFile
	for _, m := range mods.Modules {
		if m.Late {
			out = append(out, images.SystemFile{Src: filepath.Join(mods.Dir, filepath.FromSlash(m.Path)),
				Dst: "/lib/modules/" + kern.Release + "/" + m.Path, Package: pkg, Version: version})
		}
	}
	return out
}

// HostdModules are the modules hostd itself needs, whatever the profile
// lists: squashfs for the system image, ext4 for the data partition;
// ServiceModules are added for services (overlay: their root is the
// system image with a writable layer for mount points and /etc).
var (
	HostdModules   = []string{"squashfs", "ext4"}
	ServiceModules = []string{"overlay"}
	// EncryptModules open an encrypted data partition: dm-crypt, the
	// XTS mode of its cipher, and the kernel's crypto API for user space
	// (cryptsetup decrypts its keyslots through it). EncryptOptional load
	// where the CPU has them (AES-NI), else the generic AES does.
	EncryptModules  = []string{"dm_crypt", "xts", "af_alg", "algif_skcipher"}
	EncryptOptional = []string{"aesni_intel"}
	// WifiOptional are the ciphers mac80211 asks the crypto API for by
	// name (crypto-ccm(aes) and the like, through the kernel's modprobe):
	// CCMP and GCMP, and BIP's CMAC and GMAC for protected management
	// frames, where the radio leaves them to software. Debian builds some
	// in; the rest ship as modules.
	WifiOptional = []string{"ccm", "gcm", "ctr", "cmac", "ghash_generic", "gf128mul", "aesni_intel", "libarc4"}
	// PanelOptional: a guest on the panel reads hostd's virtual keyboard
	// (uinput), which passes on every key but the host key combination.
	PanelOptional = []string{"uinput"}
)

// CryptFiles are what hostd runs for an encrypted data partition.
var CryptFiles = []HostFile{{Src: "/sbin/cryptsetup", Package: "cryptsetup-bin"}}

func withHostdModules(mods []string, services bool) []string {
	out := append([]string(nil), mods...)
	need := HostdModules
	if services {
		need = append(append([]string(nil), need...), ServiceModules...)
	}
	for _, m := range need {
		if !contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// hostdModules fills hcfg's module lists from the closure: what hostd
// loads at boot (Modules), what it may miss (OptionalModules: a CPU's
// AES-NI, a cipher the kernel builds in), and the profile's own list,
// which loads before any device asks (BootModules).
func hostdModules(hcfg *config.Config, prof *profiles.Profile, mods *initramfs.ModuleSet) {
	if mods == nil {
		return
	}
	onRequest := prof.Host.Kernel.Drivers().OnRequest
	for _, r := range mods.Requested {
		if contains(onRequest, r) {
			continue // shipped; loaded when the kernel asks
		}
		if (contains(initramfs.Optional, r) || contains(EncryptOptional, r) || contains(WifiOptional, r) || contains(PanelOptional, r)) && !contains(prof.Host.Kernel.Modules, r) {
			hcfg.OptionalModules = append(hcfg.OptionalModules, r)
		} else {
			hcfg.Modules = append(hcfg.Modules, r)
		}
	}
	hcfg.BootModules = append(hcfg.BootModules, prof.Host.Kernel.Modules...)
}
