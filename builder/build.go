package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/thinhost/thinhost/builder/cache"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/internal/kmod"
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
	// Progress is told how each download goes; nil: nobody is.
	Progress func(cache.Progress)
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

// Build runs the whole pipeline, phase by phase, each from explicit
// inputs to an artifact: the host's packages (fetch, locked), the boot
// chain, the profile's artifacts, the kernel and its module closure,
// hostd's configuration, the initramfs, the system image's files, the
// disk, the manifest.
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
	if source.Embedded {
		log.Info("no thinhost checkout here: the host's programs are compiled from this thinhost's own source", "dir", source.Dir)
	}
	cache := &Cache{Dir: cacheDir}

	// With a packages block, the host's packages come from the archive
	// (pinned by the lock file); without one, from the build machine.
	var hp *hostPackages
	if prof.Packages.Given {
		if hp, err = loadHostPackages(ctx, cfg, cache, log); err != nil {
			return nil, err
		}
	}
	chain, err := findBootChain(prof, hp, cfg.Bootloader)
	if err != nil {
		return nil, err
	}
	fetcher := &Fetcher{Cache: cache, Offline: cfg.Offline, Log: log, Progress: cfg.Progress}
	arts, err := fetcher.ResolveAll(ctx, prof.Artifacts)
	if err != nil {
		return nil, err
	}
	kern, err := hostKernel(ctx, cache, prof, arts, hp, log)
	if err != nil {
		return nil, err
	}
	mods, err := moduleSet(prof, kern, log)
	if err != nil {
		return nil, err
	}
	hjson, err := hostConfigJSON(prof, kern, mods)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "thinhost-build-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd, err := buildInitramfs(ctx, log, source.Dir, mods, hjson, tmp, cache.Dir)
	if err != nil {
		return nil, err
	}
	vmTools, media, err := vmFiles(ctx, cache, prof, arts, kern)
	if err != nil {
		return nil, err
	}
	sys, err := systemImage(ctx, systemInput{Profile: prof, Packages: hp, Kernel: kern, Modules: mods, Tools: vmTools,
		Source: source.Dir, CacheDir: cache.Dir, TempDir: tmp, Log: log})
	if err != nil {
		return nil, err
	}
	disk, err := writeDisk(ctx, diskInput{Profile: prof, Output: cfg.Output, Chain: chain, Kernel: kern, Initrd: initrd,
		System: sys, Media: media, TempDir: tmp, Log: log})
	if err != nil {
		return nil, err
	}
	manifest, err := buildManifest(cfg.Output, hp, kern, initrd, sys, disk)
	if err != nil {
		return nil, err
	}

	res := &Result{
		Image: cfg.Output, ImageSize: prof.Storage.ImageSize, Allocated: disk.Allocated,
		KernelRelease: kern.Release, KernelPackage: kern.Package,
		InitramfsSize: initrd.Size, Partitions: disk.Partitions,
		Manifest: manifest, SystemFiles: len(disk.Manifest),
		Firmware: sys.Firmware,
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
	if sys.Microcode != nil {
		res.Microcode = int64(len(sys.Microcode.Data))
	}
	if fi, err := os.Stat(kern.Image); err == nil {
		res.KernelSize = fi.Size()
	}
	return res, nil
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
