package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"pault.ag/go/debian/deb"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/profiles"
)

// Kernel is a kernel image with its module tree on the local disk.
type Kernel struct {
	// Release is the kernel release ("6.1.0-56-amd64"), the name of its
	// /lib/modules directory.
	Release string
	// Image is the bzImage.
	Image string
	// ModulesDir is the /lib/modules/<Release> tree; empty when the kernel
	// comes without modules.
	ModulesDir string
	// Package is "name version" of the Debian package it came from, if any.
	Package string
	// SHA256 is the hash of the file it came from (the artifact or the
	// package), which names the build's inputs.
	SHA256 string
}

var (
	arMagic     = []byte("!<arch>\n")
	bzImageHdrS = []byte("HdrS")
)

// kernelFrom returns the kernel in the artifact at file: a Debian
// linux-image .deb (unpacked once into the cache, keyed by its sha256), or a
// plain bzImage with an optional modules directory.
func kernelFrom(ctx context.Context, cache *Cache, file, sum, modulesDir string) (*Kernel, error) {
	head := make([]byte, 0x210)
	fh, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open kernel: %w", err)
	}
	n, _ := io.ReadFull(fh, head)
	fh.Close()
	head = head[:n]
	var k *Kernel
	switch {
	case bytes.HasPrefix(head, arMagic):
		if modulesDir != "" {
			return nil, fmt.Errorf("kernel %s is a Debian package, which carries its own modules: remove modules_dir from the kernel block", file)
		}
		k, err = unpackKernelDeb(ctx, cache, file, sum)
	case len(head) >= 0x206 && bytes.Equal(head[0x202:0x206], bzImageHdrS):
		k, err = plainKernel(file, modulesDir)
	default:
		return nil, fmt.Errorf("kernel %s is neither a Debian linux-image .deb nor a bzImage", file)
	}
	if err != nil {
		return nil, err
	}
	k.SHA256 = sum
	return k, nil
}

func plainKernel(file, modulesDir string) (*Kernel, error) {
	k := &Kernel{Image: file}
	rel, err := bzImageRelease(file)
	if err != nil {
		return nil, err
	}
	k.Release = rel
	if modulesDir == "" {
		return k, nil
	}
	fi, err := os.Stat(modulesDir)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("kernel modules_dir %s: not a directory (give the /lib/modules/<release> tree of this kernel)", modulesDir)
	}
	if base := filepath.Base(modulesDir); rel != "" && base != rel {
		return nil, fmt.Errorf("kernel modules_dir %s is for release %q, but %s is release %q: modules of another release will not load", modulesDir, base, file, rel)
	}
	k.ModulesDir = modulesDir
	if k.Release == "" {
		k.Release = filepath.Base(modulesDir)
	}
	return k, nil
}

// bzImageRelease reads the release from the kernel_version string of the
// x86 boot header (Documentation/arch/x86/boot.rst: a pointer at 0x20E,
// relative to 0x200).
func bzImageRelease(file string) (string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("open kernel: %w", err)
	}
	defer fh.Close()
	var p [2]byte
	if _, err := fh.ReadAt(p[:], 0x20E); err != nil {
		return "", fmt.Errorf("read boot header of %s: %w", file, err)
	}
	off := int64(p[0]) | int64(p[1])<<8
	if off == 0 {
		return "", nil
	}
	buf := make([]byte, 256)
	n, _ := fh.ReadAt(buf, off+0x200)
	s := string(buf[:n])
	if i := strings.IndexAny(s, " \x00"); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// unpackKernelDeb extracts boot/vmlinuz-* and lib/modules/ from a Debian
// package, in Go (no dpkg), into DIR/kernels/<sha256>. The unpacked tree is
// reused by later builds.
func unpackKernelDeb(ctx context.Context, cache *Cache, file, sum string) (*Kernel, error) {
	dest := filepath.Join(cache.Dir, "kernels", sum)
	if k, err := readUnpacked(dest); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("create kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), sum+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("create kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	fh, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open kernel package: %w", err)
	}
	defer fh.Close()
	d, err := deb.Load(fh, file)
	if err != nil {
		return nil, fmt.Errorf("read Debian package %s: %w", file, err)
	}
	defer d.Close()
	if !strings.HasPrefix(d.Control.Package, "linux-image-") {
		return nil, fmt.Errorf("kernel package %s is %q, not a linux-image package", file, d.Control.Package)
	}
	if err := extractKernelFiles(ctx, d.Data, tmp); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", file, err)
	}
	pkg := d.Control.Package + " " + d.Control.Version.String()
	if err := os.WriteFile(filepath.Join(tmp, "package"), []byte(pkg+"\n"), 0o644); err != nil {
		return nil, err
	}
	if _, err := readUnpacked(tmp); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", file, err)
	}
	if err := os.Rename(tmp, dest); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("store unpacked kernel: %w", err)
	}
	return readUnpacked(dest)
}

func extractKernelFiles(ctx context.Context, tr *tar.Reader, dest string) error {
	return archive.Extract(ctx, tr, dest, func(name string) bool {
		return strings.HasPrefix(name, "boot/vmlinuz-") || strings.HasPrefix(name, "lib/modules/")
	})
}

func readUnpacked(dir string) (*Kernel, error) {
	imgs, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(imgs) != 1 {
		return nil, fmt.Errorf("want one boot/vmlinuz-* in the package, found %d", len(imgs))
	}
	rel := strings.TrimPrefix(filepath.Base(imgs[0]), "vmlinuz-")
	mods := filepath.Join(dir, "lib", "modules", rel)
	if fi, err := os.Stat(mods); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("package has no lib/modules/%s", rel)
	}
	pkg, _ := os.ReadFile(filepath.Join(dir, "package"))
	return &Kernel{Release: rel, Image: imgs[0], ModulesDir: mods, Package: strings.TrimSpace(string(pkg))}, nil
}

// hostKernel is the host's kernel: from an artifact, or the locked
// kernel package.
func hostKernel(ctx context.Context, cache *Cache, prof *profiles.Profile, arts map[string]*Resolved, hp *hostPackages, log *slog.Logger) (*Kernel, error) {
	var kern *Kernel
	if name := prof.Host.Kernel.Artifact; name != "" {
		kart := arts[name]
		log.Info("reading kernel", "artifact", name, "file", kart.Path)
		var err error
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
	return kern, nil
}
