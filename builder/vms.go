package builder

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/profiles"
)

// QEMUFiles are what hostd needs to run guests, from the build machine's
// Debian packages (qemu-system-x86, qemu-utils, swtpm, ovmf, seabios):
// QEMU and its TCG accelerator module (a plugin QEMU loads at run time),
// qemu-img, swtpm, QEMU's firmware and VNC's keymap gathered into its data directory, and
// OVMF's code and variable templates, Secure Boot ones included.
var QEMUFiles = []HostFile{
	{Src: layout.QEMUBinary, Package: "qemu-system-x86"},
	{Src: "/usr/bin/qemu-img", Package: "qemu-utils"},
	{Src: "/usr/bin/swtpm", Package: "swtpm"},
	{Src: layout.QEMUModuleDir + "/accel-tcg-x86_64.so", Package: "qemu-system-common"},
	{Src: layout.QEMUModuleDir + "/hw-usb-host.so", Package: "qemu-system-common"},
	// Windows guests' display (virtio-vga needs virtio-gpu's module).
	{Src: layout.QEMUModuleDir + "/hw-display-virtio-vga.so", Package: "qemu-system-common"},
	{Src: layout.QEMUModuleDir + "/hw-display-virtio-gpu.so", Package: "qemu-system-common"},
	{Src: "/usr/share/seabios/bios-256k.bin", Dst: layout.QEMUDataDir + "/bios-256k.bin", Package: "seabios"},
	{Src: "/usr/share/seabios/vgabios-stdvga.bin", Dst: layout.QEMUDataDir + "/vgabios-stdvga.bin", Package: "seabios"},
	{Src: "/usr/share/qemu/kvmvapic.bin", Dst: layout.QEMUDataDir + "/kvmvapic.bin", Package: "qemu-system-data"},
	{Src: "/usr/share/qemu/linuxboot_dma.bin", Dst: layout.QEMUDataDir + "/linuxboot_dma.bin", Package: "qemu-system-data"},
	{Src: "/usr/share/qemu/multiboot_dma.bin", Dst: layout.QEMUDataDir + "/multiboot_dma.bin", Package: "qemu-system-data"},
	{Src: "/usr/share/qemu/pvh.bin", Dst: layout.QEMUDataDir + "/pvh.bin", Package: "qemu-system-data"},
	// VNC's server reads its keymap at start (en-us unless -k says
	// otherwise) and QEMU exits without it.
	{Src: "/usr/share/qemu/keymaps/en-us", Dst: layout.QEMUDataDir + "/keymaps/en-us", Package: "qemu-system-data"},
	{Src: "/usr/lib/ipxe/qemu/efi-virtio.rom", Dst: layout.QEMUDataDir + "/efi-virtio.rom", Package: "ipxe-qemu"},
	{Src: layout.OVMFCode, Package: "ovmf"}, {Src: layout.OVMFVars, Package: "ovmf"},
	{Src: layout.OVMFSecureCode, Package: "ovmf"}, {Src: layout.OVMFMSVars, Package: "ovmf"},
}

// SoundFiles play guests' sound on the host's card: QEMU's ALSA backend
// (a module) and alsa-lib's configuration, which defines the plughw
// device hostd names (hostd points ALSA_CONFIG_DIR at /system); amixer,
// with which hostd unmutes the card and the volume keys move its volume;
// and alsactl, which keeps the mixer's state from one boot to the next.
var SoundFiles = []HostFile{
	{Src: layout.QEMUModuleDir + "/audio-alsa.so", Package: "qemu-system-common"},
	{Src: layout.ALSAConfigDir + "/alsa.conf", Package: "libasound2-data"},
	{Src: layout.ALSAConfigDir + "/cards/aliases.conf", Package: "libasound2-data"},
	{Src: "/usr/bin/amixer", Package: "alsa-utils"},
	{Src: "/usr/sbin/alsactl", Package: "alsa-utils"},
}

// SDLFiles draw a guest on the laptop's panel (display = "sdl"): QEMU's
// SDL interface, and what SDL's kmsdrm backend loads at run time (dlopen,
// so no ELF header names it): EGL through glvnd with Mesa's vendor file,
// GLES, Mesa's DRI drivers (Intel iris and crocus, AMD radeonsi, virgl,
// and the software ones for a display without 3D, such as QEMU's VGA),
// and libudev to find the keyboards and mice. hostd's environment points
// glvnd and Mesa at /system (systemEnv in hostd).
//
// The list fits bookworm's Mesa 22 and backports' Mesa 25 alike (a profile
// takes the latter with "libgl1-mesa-dri/bookworm-backports" and its
// siblings in packages.extra, as examples/laptop.hcl does): from Mesa 24.3
// the DRI files are links to one loader, the drivers live in libgallium
// (which the loader's ELF header names), and GBM loads a backend of its
// own, gbm/dri_gbm.so.
var SDLFiles = []HostFile{
	{Src: layout.QEMUModuleDir + "/ui-sdl.so", Package: "qemu-system-gui"},
	// ui-sdl needs it (QEMU's module dependencies), even with gl=off.
	{Src: layout.QEMUModuleDir + "/ui-opengl.so", Package: "qemu-system-common"},
	{Src: "/usr/lib/x86_64-linux-gnu/libEGL.so.1", Package: "libegl1"},
	{Src: "/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0", Package: "libegl-mesa0"},
	{Src: layout.EGLVendorDir + "/50_mesa.json", Package: "libegl-mesa0"},
	{Src: "/usr/lib/x86_64-linux-gnu/libGLESv2.so.2", Package: "libgles2"},
	{Src: "/usr/lib/x86_64-linux-gnu/libudev.so.1", Package: "libudev1"},
	{Src: layout.DRIDir + "/iris_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.DRIDir + "/crocus_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.DRIDir + "/radeonsi_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.DRIDir + "/virtio_gpu_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.DRIDir + "/kms_swrast_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.DRIDir + "/swrast_dri.so", Package: "libgl1-mesa-dri"},
	{Src: layout.GBMBackendDir + "/dri_gbm.so", Package: "libgbm1", Optional: true},
}

// VMDir is where a guest's direct-boot files live in the system image.
func VMDir(name string) string { return "/vms/" + name }

// VMSpecs turns the profile's guests into hostd's config: files carried in
// the system image get their paths under /system, ISOs their media
// partitions.
func VMSpecs(p *profiles.Profile) []config.VM {
	var out []config.VM
	for _, v := range p.VMs {
		c := config.VM{
			Name: v.Name, OS: v.OS,
			MemoryBytes: v.MemoryBytes, MemoryPercent: v.MemoryPercent,
			CPUs: v.CPUs, CPUsAll: v.CPUsAll, CPUsAllBut: v.CPUsAllBut,
			Firmware: v.Firmware, TPM: v.TPM,
			DiskSize: v.Disk.Size, DiskFormat: v.Disk.Format,
			Cmdline: v.Cmdline, Display: v.Display, Network: v.Network,
			MAC: layout.GuestMAC(v.Name), Autostart: v.Autostart, OnShutdown: map[string]string{"poweroff": "poweroff"}[v.OnShutdown],
			ShutdownTimeout: int(v.ShutdownTimeout.Seconds()),
			Nested:          v.Nested, NoSound: !v.Sound, USBHotplug: v.USBHotplug,
		}
		if v.Display == "vnc" {
			c.VNC = v.VNC
		}
		if v.MemoryPercent > 0 {
			c.MemoryBytes = 0
		}
		if v.InstallMedia != "" {
			c.InstallMedia = layout.MediaDevice(v.Name, "install")
		}
		if v.Drivers != "" {
			c.Drivers = layout.MediaDevice(v.Name, "drivers")
		}
		if v.Kernel != "" {
			c.Kernel = layout.SystemDir + VMDir(v.Name) + "/kernel"
		}
		if v.Initrd != "" {
			c.Initrd = layout.SystemDir + VMDir(v.Name) + "/initrd"
		}
		for _, u := range v.USB {
			c.USB = append(c.USB, u.String())
		}
		if v.Windows != nil {
			c.Windows = v.Windows.Config(v.OS)
		}
		out = append(out, c)
	}
	return out
}

// vmFiles lists the guests' own files in the system image (direct-boot
// kernels and initrds; QEMU itself is in HostFiles) and the media
// partitions their ISOs become.
// A guest's kernel artifact may be a Debian linux-image package, like the
// host's (its bzImage is what QEMU boots), a bzImage, or a multiboot
// kernel, which QEMU also boots directly; "host" is the host's own kernel.
func vmFiles(ctx context.Context, cache *Cache, p *profiles.Profile, arts map[string]*Resolved, host *Kernel) ([]HostFile, []images.Media, error) {
	if len(p.VMs) == 0 {
		return nil, nil, nil
	}
	var files []HostFile
	var media []images.Media
	for _, v := range p.VMs {
		if v.Kernel == profiles.HostKernel {
			files = append(files, HostFile{Src: host.Image, Dst: VMDir(v.Name) + "/kernel"})
		} else if v.Kernel != "" {
			ka := arts[v.Kernel]
			image, err := guestKernel(ctx, cache, ka)
			if err != nil {
				return nil, nil, fmt.Errorf("vm %q kernel artifact %q (%s): %w", v.Name, v.Kernel, v.DeclRange, err)
			}
			files = append(files, HostFile{Src: image, Dst: VMDir(v.Name) + "/kernel"})
		}
		if v.Initrd != "" {
			files = append(files, HostFile{Src: arts[v.Initrd].Path, Dst: VMDir(v.Name) + "/initrd"})
		}
		for _, m := range []struct{ kind, art string }{{"install", v.InstallMedia}, {"drivers", v.Drivers}} {
			if m.art == "" {
				continue
			}
			path := arts[m.art].Path
			fi, err := os.Stat(path)
			if err != nil {
				return nil, nil, fmt.Errorf("vm %q (%s): %w", v.Name, v.DeclRange, err)
			}
			media = append(media, images.Media{Name: layout.MediaName(v.Name, m.kind), Path: path, Size: fi.Size()})
		}
	}
	return files, media, nil
}

// needHostFiles checks that the build machine has files, naming the Debian
// package to install for a missing one.
func needHostFiles(files []HostFile, what string) error {
	for _, f := range files {
		if _, err := os.Stat(f.Src); err != nil && !f.Optional {
			return fmt.Errorf("find %s for %s: %w (on Debian: apt-get install %s)", f.Src, what, err, f.Package)
		}
	}
	return nil
}

// guestKernel is the file QEMU boots for a guest's kernel artifact: a
// multiboot kernel as it is, otherwise the bzImage of the Linux kernel it
// holds.
func guestKernel(ctx context.Context, cache *Cache, a *Resolved) (string, error) {
	f, err := os.Open(a.Path)
	if err != nil {
		return "", fmt.Errorf("open kernel: %w", err)
	}
	head := make([]byte, multibootSearch)
	n, _ := io.ReadFull(f, head)
	f.Close()
	if isMultiboot(head[:n]) {
		return a.Path, nil
	}
	k, err := kernelFrom(ctx, cache, a.Path, a.SHA256, "")
	if err != nil {
		return "", err
	}
	return k.Image, nil
}

// The multiboot (version 1) header: its magic, 4-byte aligned within the
// first 8 KiB, followed by flags and a checksum that makes the three sum
// to zero.
const (
	multibootMagic  = 0x1BADB002
	multibootSearch = 8192
)

// isMultiboot reports whether head (a kernel's first bytes) holds a valid
// multiboot header, as QEMU's loader looks for it.
func isMultiboot(head []byte) bool {
	for off := 0; off+12 <= len(head) && off < multibootSearch; off += 4 {
		magic := binary.LittleEndian.Uint32(head[off:])
		if magic != multibootMagic {
			continue
		}
		flags := binary.LittleEndian.Uint32(head[off+4:])
		if magic+flags+binary.LittleEndian.Uint32(head[off+8:]) == 0 {
			return true
		}
	}
	return false
}
