package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/profiles"
)

// diskInput is what the disk image is made from.
type diskInput struct {
	Profile *profiles.Profile
	// Output is the image's path; the disk is written beside it under a
	// temporary name and renamed at the end.
	Output string
	Chain  *bootChain
	Kernel *Kernel
	Initrd *initrdArtifact
	System *systemArtifact
	// Media are the guests' install and driver media partitions.
	Media   []images.Media
	TempDir string
	Log     *slog.Logger
}

// diskArtifact is the written image.
type diskArtifact struct {
	Partitions []images.Partition
	// Manifest lists the system image's files.
	Manifest []images.ManifestEntry
	// UKI is the signed unified kernel image (own Secure Boot keys), "".
	UKI string
	// Allocated is what the sparse image occupies.
	Allocated int64
}

// writeDisk writes the GPT disk: the ESP with the boot chain, the kernel
// and its initrds (or the signed unified image), the system image in slot
// A, the empty slot B and data partition, the guests' media. A failed
// write leaves any previous image at Output intact.
func writeDisk(ctx context.Context, in diskInput) (*diskArtifact, error) {
	prof, log, chain, sys := in.Profile, in.Log, in.Chain, in.System
	seed, err := buildSeed(in.Kernel.SHA256, in.Initrd.Path, sys.MicrocodePath, sys.Cmdline, prof)
	if err != nil {
		return nil, err
	}
	title, build := "thinhost "+prof.Host.Hostname, buildID(seed, sys.Files)
	bootloader := chain.Bootloader
	res := &diskArtifact{}
	var own *ownChain
	if chain.Keys != nil {
		initrds := []string{in.Initrd.Path}
		if sys.MicrocodePath != "" {
			initrds = []string{sys.MicrocodePath, in.Initrd.Path}
		}
		if own, err = buildOwnChain(log, chain.Keys, in.TempDir, bootloader, chain.Stub, in.Kernel.Image, initrds, sys.Cmdline, osRelease(title, build)); err != nil {
			return nil, err
		}
		bootloader = own.Loader
		res.UKI = own.UKI
	}
	out, err := os.CreateTemp(filepath.Dir(in.Output), "."+filepath.Base(in.Output)+".tmp-")
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
		Shim:       chain.Shim,
		GRUB:       chain.GRUB,
		Kernel:     in.Kernel.Image,
		Initrd:     in.Initrd.Path,
		Microcode:  sys.MicrocodePath,
		Cmdline:    sys.Cmdline,
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
		Sizes:     images.Sizes{Image: st.ImageSize, ESP: st.ESPSize, System: st.SystemSize, Data: st.DataSize, Media: in.Media},
		Boot:      boot,
		System:    sys.Files,
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
		log.Info("the image carries Wi-Fi passphrases on its empty data partition until its first boot: it is readable by its owner alone", "image", in.Output)
	}
	if err := os.Chmod(tmpOut, mode); err != nil {
		return nil, fmt.Errorf("chmod image: %w", err)
	}
	if err := os.Rename(tmpOut, in.Output); err != nil {
		return nil, fmt.Errorf("move image into place: %w", err)
	}
	ok = true
	res.Partitions, res.Manifest = dres.Partitions, dres.Manifest
	if fi, err := os.Stat(in.Output); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			res.Allocated = s.Blocks * 512
		}
	}
	return res, nil
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
