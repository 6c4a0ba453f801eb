package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/images/ovmfvars"
	"github.com/thinhost/thinhost/initramfs"
	"github.com/thinhost/thinhost/internal/fsutil"
	"github.com/thinhost/thinhost/internal/kmod"
	"github.com/thinhost/thinhost/internal/passwd"
	"github.com/thinhost/thinhost/internal/secureboot"
	"github.com/thinhost/thinhost/profiles"
)

// ModulePath is the Go module whose source builds hostd.
const ModulePath = "github.com/thinhost/thinhost"

// DefaultBootloader is where Debian's systemd-boot-efi package puts
// systemd-boot.
const DefaultBootloader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// The Secure Boot chain (profiles.SecureBootStock): Debian's shim, signed
// by Microsoft's UEFI CA (which laptops ship enrolled), and Debian's GRUB
// and kernel, signed by Debian's key, which shim carries.
const (
	ShimPath    = "/usr/lib/shim/shimx64.efi.signed"
	ShimPackage = "shim-signed"
	GRUBPath    = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
	GRUBPackage = "grub-efi-amd64-signed"
)

// HostTools are the build machine's programs that hostd runs (Debian's
// e2fsprogs, for the data partition). They go into the read-only system
// image (system slot A) with their shared libraries and dynamic loader;
// hostd runs them from there.
var HostTools = []HostFile{
	{Src: "/sbin/mke2fs", Package: "e2fsprogs"},
	{Src: "/sbin/e2fsck", Package: "e2fsprogs"},
	{Src: "/sbin/resize2fs", Package: "e2fsprogs"},
	{Src: "/sbin/tune2fs", Package: "e2fsprogs"},
	{Src: "/etc/mke2fs.conf", Package: "e2fsprogs"},
}

// ErrOutput marks an output path the builder refuses to write.
var ErrOutput = errors.New("refusing to write output")

// Config is one build.
type Config struct {
	Profile *profiles.Profile
	// Output is the disk image to write. It is written under a temporary
	// name beside it and renamed at the end, so a failed build leaves any
	// previous image intact.
	Output string
	// CacheDir holds downloads and unpacked kernels; "" uses
	// DefaultCacheDir.
	CacheDir string
	// Offline forbids downloads.
	Offline bool
	// SourceDir is the thinhost module source; "" searches upwards from
	// the working directory, then $THINHOST_SRC.
	SourceDir string
	// LockPath is the lock file of the profile's packages; "" uses
	// LockPath(profile) beside it.
	LockPath string
	// Bootloader is systemd-boot's EFI binary; "" uses DefaultBootloader.
	Bootloader string
	Log        *slog.Logger
	// Progress receives progress bars; nil disables them.
	Progress io.Writer
}

// Result describes a finished build.
type Result struct {
	Image string
	// ImageSize is the image's apparent size; Allocated what it occupies
	// on disk (the image is sparse).
	ImageSize, Allocated int64
	KernelRelease        string
	KernelPackage        string
	KernelSize           int64
	InitramfsSize        int64
	// Modules are the kernel modules in the initramfs; LateModules those
	// in the system image; Firmware the firmware files; Microcode the
	// early microcode initrd's size (0: none).
	Modules, LateModules int
	Firmware             int
	Microcode            int64
	Partitions           []images.Partition
	Duration             time.Duration
	// Manifest is the system image's manifest, written beside the image;
	// SystemFiles how many files the system image holds.
	Manifest    string
	SystemFiles int
	// Lock is the lock file the host's Packages came from; "" when they
	// came from the build machine.
	Lock     string
	Packages int
	// EmbeddedSource is where this thinhost's own source was written out
	// and the host's programs compiled from, when no checkout was found;
	// "" for a checkout.
	EmbeddedSource string
}

// Build runs the whole pipeline.
func Build(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	log, cacheDir, err := logAndCache(cfg.Log, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	prof := cfg.Profile
	if err := checkOutput(cfg.Output); err != nil {
		return nil, err
	}
	source, err := findSource(cfg.SourceDir, cacheDir)
	if err != nil {
		return nil, err
	}
	src := source.Dir
	if source.Embedded {
		log.Info("no thinhost checkout here: the host's programs are compiled from this thinhost's own source", "dir", src)
	}
	cache := &Cache{Dir: cacheDir}

	// Phase 0: with a packages block, the host's packages come from the
	// archive (pinned by the lock file); without one, from the build
	// machine.
	var hp *hostPackages
	if prof.Packages.Given {
		if hp, err = loadHostPackages(ctx, cfg, cache, log); err != nil {
			return nil, err
		}
	}
	// The boot chain's loaders, from the locked packages (or, without a
	// packages block, the build machine).
	loader := func(what, path, pkg string) (string, error) {
		if hp != nil {
			f, err := hp.Tree.Lookup(path)
			if err != nil {
				return "", fmt.Errorf("find %s in the locked packages (%s): %w", what, hp.LockPath, err)
			}
			return f.File, nil
		}
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("find %s %s: %w (on Debian: apt-get install %s, or give the profile a packages block)", what, path, err, pkg)
		}
		return path, nil
	}
	var bootloader, shim, grub, stub string
	var keys *secureboot.Keys
	if prof.Boot.SecureBoot == profiles.SecureBootOwn {
		if keys, err = secureboot.Load(prof.Boot.Keys); err != nil {
			return nil, fmt.Errorf("boot block (%s): %w", prof.Boot.DeclRange, err)
		}
		if stub, err = loader("systemd's EFI stub (the unified kernel image)", StubPath, BootloaderPackage); err != nil {
			return nil, err
		}
	}
	if prof.Boot.SecureBoot == profiles.SecureBootStock {
		if shim, err = loader("shim (Secure Boot)", ShimPath, ShimPackage); err != nil {
			return nil, err
		}
		if grub, err = loader("GRUB (Secure Boot)", GRUBPath, GRUBPackage); err != nil {
			return nil, err
		}
	} else if bootloader = cfg.Bootloader; bootloader == "" {
		if bootloader, err = loader("systemd-boot", DefaultBootloader, BootloaderPackage); err != nil {
			return nil, err
		}
	}

	// Phase 1: artifacts.
	fetcher := &Fetcher{Cache: cache, Offline: cfg.Offline, Log: log, Progress: cfg.Progress}
	arts, err := fetcher.ResolveAll(ctx, prof.Artifacts)
	if err != nil {
		return nil, err
	}

	// Phase 2: kernel and modules: from an artifact, or the locked
	// kernel package.
	var kern *Kernel
	if name := prof.Host.Kernel.Artifact; name != "" {
		kart := arts[name]
		log.Info("reading kernel", "artifact", name, "file", kart.Path)
		if kern, err = kernelFrom(ctx, cache, kart.Path, kart.SHA256, prof.Host.Kernel.ModulesDir); err != nil {
			return nil, fmt.Errorf("kernel artifact %q (%s): %w", name, prof.Host.Kernel.Range, err)
		}
	} else {
		pkg, err := lockedKernelPackage(prof, hp.Lock, hp.LockPath)
		if err != nil {
			return nil, err
		}
		if kern, err = packageKernel(pkg, hp.Unpacked[pkg.Name]); err != nil {
			return nil, err
		}
	}
	log.Info("kernel", "release", kern.Release, "package", kern.Package)
	mods, err := moduleSet(prof, kern, log)
	if err != nil {
		return nil, err
	}

	// Phase 3: initramfs.
	tmp, err := os.MkdirTemp("", "thinhost-build-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	hcfg, err := HostdConfig(prof)
	if err != nil {
		return nil, err
	}
	hcfg.KernelRelease = kern.Release
	if mods != nil {
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
	hjson, err := hcfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode hostd config: %w", err)
	}
	initrdPath := filepath.Join(tmp, "initrd.zst")
	initrd, err := os.Create(initrdPath)
	if err != nil {
		return nil, fmt.Errorf("create initramfs: %w", err)
	}
	log.Info("building initramfs", "source", src)
	t0 := time.Now()
	ires, err := initramfs.Build(ctx, initramfs.Config{
		SourceDir: src, Modules: mods, HostdConfig: hjson, TempDir: tmp, CacheDir: cache.Dir, Log: log,
	}, initrd)
	if cerr := initrd.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write initramfs: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	log.Info("built initramfs", "bytes", ires.Size, "uncompressed", ires.Uncompressed, "programs_cached", ires.Cached, "duration", time.Since(t0).Round(time.Millisecond))

	// Phase 4: the read-only system image's files, with their Debian
	// packages for the manifest.
	vmTools, media, err := vmFiles(ctx, cache, prof, arts, kern)
	if err != nil {
		return nil, err
	}
	tools := HostFiles(prof)
	var system []images.SystemFile
	var microcode *Microcode
	firmwareCount := 0
	cmdline := Cmdline(prof)
	if hp != nil {
		var svc []HostFile
		if svc, err = serviceFiles(prof, hp); err != nil {
			return nil, err
		}
		fw := firmwareFiles(mods, hp.Tree)
		firmwareCount = len(fw.Files)
		if len(fw.Files) > 0 {
			cmdline += " firmware_class.path=" + FirmwarePath
		}
		log.Info("firmware", "files", len(fw.Files), "named_by_modules", fw.Wanted)
		if mods != nil {
			none := strings.Join(fw.NoFirmware(mods), ", ")
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
		if system, err = systemFilesFromPackages(hp, append(tools, svc...), append(fw.Files, ucm...), vmTools); err != nil {
			return nil, err
		}
		if microcode, err = microcodeInitrd(hp.Tree); err != nil {
			return nil, err
		}
	} else {
		if err := needHostFiles(tools, "the profile's host (its guests, shares and data partition)"); err != nil {
			return nil, err
		}
		if system, err = systemFiles(append(tools, vmTools...)); err != nil {
			return nil, err
		}
	}
	system = append(system, lateModules(mods, kern)...)
	if system, err = withMicrosoft2023Vars(system, cache.Dir); err != nil {
		return nil, err
	}
	if hasWindowsGuest(prof) {
		ctl, err := guestCtl(ctx, log, src, cache.Dir)
		if err != nil {
			return nil, err
		}
		system = append(system, ctl)
	}
	microcodePath := ""
	if microcode != nil {
		microcodePath = filepath.Join(tmp, "microcode.cpio")
		if err := os.WriteFile(microcodePath, microcode.Data, 0o644); err != nil {
			return nil, fmt.Errorf("write microcode initrd: %w", err)
		}
		log.Info("early microcode", "bytes", len(microcode.Data), "packages", strings.Join(microcode.Packages, ", "))
	}

	// Phase 5: the disk.
	seed, err := buildSeed(kern.SHA256, initrdPath, microcodePath, cmdline, prof)
	if err != nil {
		return nil, err
	}
	title, build := "thinhost "+prof.Host.Hostname, buildID(seed, system)
	var own *ownChain
	if keys != nil {
		initrds := []string{initrdPath}
		if microcodePath != "" {
			initrds = []string{microcodePath, initrdPath}
		}
		if own, err = buildOwnChain(log, keys, tmp, bootloader, stub, kern.Image, initrds, cmdline, osRelease(title, build)); err != nil {
			return nil, err
		}
		bootloader = own.Loader
	}
	out, err := os.CreateTemp(filepath.Dir(cfg.Output), "."+filepath.Base(cfg.Output)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	tmpOut := out.Name()
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmpOut)
		}
	}()
	st := prof.Storage
	boot := images.Boot{
		Bootloader: bootloader,
		Shim:       shim,
		GRUB:       grub,
		Kernel:     kern.Image,
		Initrd:     initrdPath,
		Microcode:  microcodePath,
		Cmdline:    cmdline,
		Title:      title,
		Build:      build,
		Profile:    filepath.Base(prof.Path),
	}
	if own != nil {
		boot.UKI, boot.EnrollKeys = own.UKI, own.Enroll
	}
	firstBoot, err := FirstBoot(prof)
	if err != nil {
		return nil, err
	}
	dres, err := images.Write(ctx, out, images.Config{
		Sizes:     images.Sizes{Image: st.ImageSize, ESP: st.ESPSize, System: st.SystemSize, Data: st.DataSize, Media: media},
		Boot:      boot,
		System:    system,
		Seed:      seed,
		FirstBoot: firstBoot,
		Log:       log,
	})
	if err != nil {
		return nil, err
	}
	if err := out.Sync(); err != nil {
		return nil, fmt.Errorf("sync image: %w", err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("close image: %w", err)
	}
	// Readable by all, unless it carries first-boot secrets (Wi-Fi
	// passphrases, until the first boot takes them): then its owner's.
	mode := os.FileMode(0o644)
	if firstBoot != nil {
		mode = 0o600
		log.Info("the image carries Wi-Fi passphrases on its empty data partition until its first boot: it is readable by its owner alone", "image", cfg.Output)
	}
	if err := os.Chmod(tmpOut, mode); err != nil {
		return nil, fmt.Errorf("chmod image: %w", err)
	}
	if err := os.Rename(tmpOut, cfg.Output); err != nil {
		return nil, fmt.Errorf("move image into place: %w", err)
	}
	ok = true
	manifest := cfg.Output + ".manifest.json"
	var lockRef *manifestLock
	if hp != nil {
		lockRef = &manifestLock{Path: filepath.Base(hp.LockPath), SHA256: hp.LockSHA256, Packages: len(hp.Lock.Packages)}
	}
	ukiPath := ""
	if own != nil {
		ukiPath = own.UKI
	}
	bootFiles, err := bootManifest(kern, initrdPath, microcodePath, microcode, ukiPath)
	if err != nil {
		return nil, err
	}
	if err := writeManifest(manifest, lockRef, bootFiles, dres.Manifest); err != nil {
		return nil, err
	}

	res := &Result{
		Image: cfg.Output, ImageSize: st.ImageSize,
		KernelRelease: kern.Release, KernelPackage: kern.Package,
		InitramfsSize: ires.Size, Partitions: dres.Partitions,
		Manifest: manifest, SystemFiles: len(dres.Manifest),
		Duration: time.Since(start),
	}
	if hp != nil {
		res.Lock, res.Packages = hp.LockPath, len(hp.Lock.Packages)
	}
	if source.Embedded {
		res.EmbeddedSource = source.Dir
	}
	if mods != nil {
		for _, m := range mods.Modules {
			if m.Late {
				res.LateModules++
			} else {
				res.Modules++
			}
		}
	}
	res.Firmware = firmwareCount
	if microcode != nil {
		res.Microcode = int64(len(microcode.Data))
	}
	if fi, err := os.Stat(kern.Image); err == nil {
		res.KernelSize = fi.Size()
	}
	if fi, err := os.Stat(cfg.Output); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			res.Allocated = s.Blocks * 512
		}
	}
	return res, nil
}

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
	if p.Host.Kernel.Cmdline != "" {
		parts = append(parts, p.Host.Kernel.Cmdline)
	}
	return strings.Join(parts, " ")
}

func buildSeed(kernelSum, initrd, microcode, cmdline string, p *profiles.Profile) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "thinhost-image-v1\nkernel %s\ncmdline %s\nstorage %+v\n", kernelSum, cmdline, p.Storage)
	isum, err := fileSHA256(initrd)
	if err != nil {
		return nil, fmt.Errorf("hash initramfs: %w", err)
	}
	fmt.Fprintf(h, "initrd %s\n", isum)
	if microcode != "" {
		msum, err := fileSHA256(microcode)
		if err != nil {
			return nil, fmt.Errorf("hash microcode initrd: %w", err)
		}
		fmt.Fprintf(h, "microcode %s\n", msum)
	}
	return h.Sum(nil), nil
}

// buildID names a build for people (ctl status shows each slot's): the
// inputs the seed covers and what the system image holds, file by file
// (package versions, or size and time of files from the build machine).
func buildID(seed []byte, system []images.SystemFile) string {
	h := sha256.New()
	h.Write(seed)
	files := append([]images.SystemFile(nil), system...)
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	for _, f := range files {
		if f.Package != "" {
			fmt.Fprintf(h, "%s %s %s\n", f.Dst, f.Package, f.Version)
			continue
		}
		var size, mtime int64
		if fi, err := os.Stat(f.Src); err == nil {
			size, mtime = fi.Size(), fi.ModTime().UnixNano()
		}
		fmt.Fprintf(h, "%s %d %d\n", f.Dst, size, mtime)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// checkOutput refuses outputs that are not (or would not be) a regular file
// in an existing directory: the builder never writes through to a device.
func checkOutput(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no output path given (use -o IMAGE)", ErrOutput)
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("%w %s: it exists and is not a regular file (%s); thinhost build writes image files only: use thinhost flash for devices", ErrOutput, path, fi.Mode().Type())
	case err != nil && !os.IsNotExist(err):
		return fmt.Errorf("%w %s: %v", ErrOutput, path, err)
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil || !di.IsDir() {
		return fmt.Errorf("%w %s: directory %s does not exist", ErrOutput, path, dir)
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if kmod.Name(v) == x {
			return true
		}
	}
	return false
}

// hexSum is a helper for tests and messages.
func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

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

// manifestLock names the lock file a build took its packages from.
type manifestLock struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Packages int    `json:"packages"`
}

// bootEntry is one file of the ESP's boot slot in the manifest.
type bootEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Packages are the Debian packages (name and version) it is made
	// from.
	Packages []string `json:"packages,omitempty"`
}

// bootManifest describes the boot slot's kernel, initramfs and early
// microcode initrd.
func bootManifest(kern *Kernel, initrd, microcodePath string, mc *Microcode, ukiPath string) ([]bootEntry, error) {
	files := []struct {
		path, src string
		pkgs      []string
	}{
		{layout.KernelPath("a"), kern.Image, nil},
		{layout.InitrdPath("a"), initrd, nil},
	}
	if kern.Package != "" {
		files[0].pkgs = []string{kern.Package}
	}
	if ukiPath != "" {
		// One signed file holds them all.
		files = files[:1]
		files[0].path, files[0].src = layout.UKIPath("a"), ukiPath
		if mc != nil {
			files[0].pkgs = append(files[0].pkgs, mc.Packages...)
		}
	} else if mc != nil {
		files = append(files, struct {
			path, src string
			pkgs      []string
		}{layout.MicrocodePath("a"), microcodePath, mc.Packages})
	}
	var out []bootEntry
	for _, f := range files {
		sum, err := fileSHA256(f.src)
		if err != nil {
			return nil, fmt.Errorf("hash %s for the manifest: %w", f.path, err)
		}
		fi, err := os.Stat(f.src)
		if err != nil {
			return nil, fmt.Errorf("hash %s for the manifest: %w", f.path, err)
		}
		out = append(out, bootEntry{Path: "/" + f.path, Size: fi.Size(), SHA256: sum, Packages: f.pkgs})
	}
	return out, nil
}

// writeManifest writes the image's manifest as JSON, atomically: the lock
// file, the boot slot's files on the ESP, the system image's files.
func writeManifest(path string, lock *manifestLock, boot []bootEntry, entries []images.ManifestEntry) error {
	b, err := json.MarshalIndent(struct {
		Version int                    `json:"version"`
		Lock    *manifestLock          `json:"lock,omitempty"`
		Boot    []bootEntry            `json:"boot"`
		Files   []images.ManifestEntry `json:"files"`
	}{1, lock, boot, entries}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	return nil
}

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
	// PanelOptional: a guest on the panel reads hostd's virtual keyboard
	// (uinput), which passes on every key but the host key combination.
	PanelOptional = []string{"uinput"}
	WifiOptional  = []string{"ccm", "gcm", "ctr", "cmac", "ghash_generic", "gf128mul", "aesni_intel", "libarc4"}
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

// tokenHash is the hex SHA-256 of a profile's API token ("" for none).
func tokenHash(token string) string {
	if token == "" {
		return ""
	}
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// HostdConfig is hostd's configuration for prof, without what the kernel
// decides (its release and the modules to load): the host, its storage,
// guests, shares and services, with the profile's secrets as hashes.
func HostdConfig(prof *profiles.Profile) (*config.Config, error) {
	hcfg := &config.Config{Hostname: prof.Host.Hostname,
		APIPort: prof.Host.APIPort, APIOnHostNetwork: prof.Host.APIOnHostNetwork, LowBattery: prof.Host.LowBattery, Lid: prof.Host.Lid, APITokenSHA256: tokenHash(prof.Host.APIToken), DataEncrypt: prof.Storage.Encrypt, DataTPM: prof.Storage.TPM, DataDiskSerial: prof.Storage.DataDiskSerial, VMs: VMSpecs(prof), FileServer: FileServerSpec(prof), Services: ServiceSpecs(prof)}
	if prof.Storage.DataDisk == profiles.DataDiskInternal {
		hcfg.DataDisk = profiles.DataDiskInternal
	}
	hcfg.BrightnessKeysToGuest = prof.Host.BrightnessKeys == "guest"
	hcfg.VolumeKeysToGuest = prof.Host.VolumeKeys == "guest"
	if prof.Wifi != nil {
		hcfg.Wifi = prof.Wifi.Config()
	}
	var err error
	if pw := prof.Host.ShellPassword; pw != "" {
		salt := sha256.Sum256([]byte("thinhost shell password\x00" + prof.Host.Hostname))
		if hcfg.ShellPasswordHash, err = passwd.Hash(pw, salt[:16]); err != nil {
			return nil, err
		}
	}
	if pw := prof.Host.PagePassword; pw != "" {
		salt := sha256.Sum256([]byte("thinhost page password\x00" + prof.Host.Hostname))
		if hcfg.PagePasswordHash, err = passwd.Hash(pw, salt[:16]); err != nil {
			return nil, err
		}
	}
	return hcfg, nil
}

// FirstBoot is the payload the image leaves on its empty data partition
// for hostd's first boot (layout.FirstBootRecord): the wifi networks'
// passphrases, which the boot files never carry. nil when the profile
// has none.
func FirstBoot(prof *profiles.Profile) ([]byte, error) {
	if prof.Wifi == nil || len(prof.Wifi.Passphrases()) == 0 {
		return nil, nil
	}
	return json.Marshal(config.FirstBoot{WifiPassphrases: prof.Wifi.Passphrases()})
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
