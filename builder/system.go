package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/ovmfvars"
	"github.com/thinhost/thinhost/initramfs"
	"github.com/thinhost/thinhost/internal/fsutil"
	"github.com/thinhost/thinhost/profiles"
)

// Cmdline is the kernel command line of the image: consoles first (the
// last is /dev/console), then the profile's own arguments.
func Cmdline(p *profiles.Profile) string {
	var parts []string
	for _, c := range p.Host.Console {
		parts = append(parts, "console="+c)
	}
	// A kernel that panics restarts after 10 s instead of hanging: the
	// boot loader then counts the failed boot, and an update that cannot
	// boot falls back to the previous slot by itself. The profile's own
	// panic= comes later and wins.
	parts = append(parts, "panic=10")
	// Transparent huge pages where a program asks for them: QEMU does for
	// the guests' memory. Debian's "always" gave every Go program's heap
	// 2 MiB pages, 4 MiB for init's few hundred KiB.
	parts = append(parts, "transparent_hugepage=madvise")
	if p.Host.Kernel.Cmdline != "" {
		parts = append(parts, p.Host.Kernel.Cmdline)
	}
	return strings.Join(parts, " ")
}

// systemInput is what the system image is made from.
type systemInput struct {
	Profile *profiles.Profile
	// Packages are the locked host packages; nil: the build machine's.
	Packages *hostPackages
	Kernel   *Kernel
	Modules  *initramfs.ModuleSet
	// Tools are the guests' programs and firmware (vmFiles).
	Tools []HostFile
	// Source is thinhost's source, for thinhost.exe.
	Source   string
	CacheDir string
	// TempDir takes the microcode initrd.
	TempDir string
	Log     *slog.Logger
}

// systemArtifact is the read-only system image's files, with what the
// boot slot takes from the same packages: the early microcode initrd and
// the kernel command line's firmware path.
type systemArtifact struct {
	Files    []images.SystemFile
	Firmware int
	// Microcode is the early microcode initrd (nil: none), written at
	// MicrocodePath.
	Microcode     *Microcode
	MicrocodePath string
	// Cmdline is the kernel command line.
	Cmdline string
}

// systemImage collects the system image's files: hostd's tools, the
// guests' QEMU, OVMF and swtpm, Samba, the services' programs, the
// modules that load firmware and the firmware they name, each with the
// Debian package it came from; Microsoft's 2023 variable store and
// thinhost.exe for Windows guests.
func systemImage(ctx context.Context, in systemInput) (*systemArtifact, error) {
	prof, hp, log := in.Profile, in.Packages, in.Log
	tools := HostFiles(prof)
	out := &systemArtifact{Cmdline: Cmdline(prof)}
	var err error
	if hp != nil {
		var svc []HostFile
		if svc, err = serviceFiles(prof, hp); err != nil {
			return nil, err
		}
		fw := firmwareFiles(in.Modules, hp.Tree)
		out.Firmware = len(fw.Files)
		if len(fw.Files) > 0 {
			out.Cmdline += " firmware_class.path=" + FirmwarePath
		}
		log.Info("firmware", "files", len(fw.Files), "named_by_modules", fw.Wanted)
		if in.Modules != nil {
			none := strings.Join(fw.NoFirmware(in.Modules), ", ")
			switch {
			case none == "":
			case len(fw.Files) == 0:
				// A profile for QEMU needs none; say it once, quietly.
				log.Info("no firmware package is locked: on real hardware, GPUs, Wi-Fi and some network adapters lack their firmware (examples/laptop.hcl adds them)",
					"modules", none)
			default:
				log.Warn("modules without any of their firmware: add the packages named to packages.extra (component non-free-firmware) for this hardware to work",
					"modules", none)
			}
		}
		ucm, err := ucmFiles(prof, hp)
		if err != nil {
			return nil, err
		}
		if out.Files, err = systemFilesFromPackages(hp, append(tools, svc...), append(fw.Files, ucm...), in.Tools); err != nil {
			return nil, err
		}
		if out.Microcode, err = microcodeInitrd(hp.Tree); err != nil {
			return nil, err
		}
	} else {
		if err := needHostFiles(tools, "the profile's host (its guests, shares and data partition)"); err != nil {
			return nil, err
		}
		if out.Files, err = systemFiles(append(tools, in.Tools...)); err != nil {
			return nil, err
		}
	}
	out.Files = append(out.Files, lateModules(in.Modules, in.Kernel)...)
	if out.Files, err = withMicrosoft2023Vars(out.Files, in.CacheDir); err != nil {
		return nil, err
	}
	if hasWindowsGuest(prof) {
		ctl, err := guestCtl(ctx, log, in.Source, in.CacheDir)
		if err != nil {
			return nil, err
		}
		out.Files = append(out.Files, ctl)
	}
	if mc := out.Microcode; mc != nil {
		out.MicrocodePath = filepath.Join(in.TempDir, "microcode.cpio")
		if err := os.WriteFile(out.MicrocodePath, mc.Data, 0o644); err != nil {
			return nil, fmt.Errorf("write microcode initrd: %w", err)
		}
		log.Info("early microcode", "bytes", len(mc.Data), "packages", strings.Join(mc.Packages, ", "))
	}
	return out, nil
}

// systemFiles resolves tools (with their libraries) into the system image's
// files, each with the Debian package it came from.
func systemFiles(tools []HostFile) ([]images.SystemFile, error) {
	res, err := ResolveHostFiles(tools)
	if err != nil {
		return nil, fmt.Errorf("collect the system image's files: %w", err)
	}
	dp := loadDebianPackages("/")
	out := make([]images.SystemFile, len(res))
	for i, f := range res {
		pkg, ver := dp.lookup(f.Dst, f.Src)
		out[i] = images.SystemFile{Src: f.Src, Dst: f.Dst, Package: pkg, Version: ver}
	}
	return out, nil
}

// withMicrosoft2023Vars adds to system, when it carries the ovmf
// package's variable store with Microsoft's keys, a copy with Microsoft's
// 2023 KEK and db certificates beside the 2011 ones
// (layout.OVMFMSVars2023): new Secure Boot guests start from it, so
// Windows media signed by the "Windows UEFI CA 2023" boot. The copy is
// kept in the cache under its own hash, so its path and bytes are the
// same in every build of the same package.
func withMicrosoft2023Vars(system []images.SystemFile, cacheDir string) ([]images.SystemFile, error) {
	for _, f := range system {
		dst := f.Dst
		if dst == "" {
			dst = f.Src
		}
		if dst != layout.OVMFMSVars {
			continue
		}
		raw, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read the UEFI variable store: %w", err)
		}
		out, err := ovmfvars.WithMicrosoft2023(raw)
		if err != nil {
			return nil, fmt.Errorf("add Microsoft's 2023 certificates to %s: %w", f.Src, err)
		}
		sum := sha256.Sum256(out)
		p := filepath.Join(cacheDir, "generated", hex.EncodeToString(sum[:12]), filepath.Base(layout.OVMFMSVars2023))
		if _, err := os.Stat(p); err != nil {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := fsutil.WriteFile(p, bytes.NewReader(out), 0o644, nil); err != nil {
				return nil, fmt.Errorf("write the UEFI variable store: %w", err)
			}
		}
		ver := f.Version
		if ver != "" {
			ver += "+"
		}
		return append(system, images.SystemFile{Src: p, Dst: layout.OVMFMSVars2023, Package: f.Package,
			Version: ver + "thinhost-microsoft-2023"}), nil
	}
	return system, nil
}
