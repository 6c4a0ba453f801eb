// Package testguest builds the initramfs of thinhost's test guest (see
// guestinit): a static Go init plus the kernel modules it needs, from the
// same Debian kernel package the host boots.
package testguest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/initramfs"
	"github.com/thinhost/thinhost/profiles"
)

// Modules are what the guest loads: its virtio disk, the ACPI power
// button with the input events it reads (keys too), and the DRM driver of
// QEMU's standard VGA, whose framebuffer it paints (display = "sdl"),
// efivarfs, through which it reads the firmware's Secure Boot keys, and
// virtio-net with the kernel's SMB3 client, with which it writes to the
// host's share.
var Modules = []string{"virtio_pci", "virtio_blk", "button", "evdev", "bochs", "efivarfs", "virtio_net", "cifs",
	// SMB3's signing (AES-CMAC) and encryption (AES-GCM, AES-CCM): cifs
	// names them only as soft dependencies, and the guest has no modprobe.
	"cmac", "ccm", "gcm", "ctr", "ghash_generic", "sha512_generic", "ecb"}

// The pattern the guest paints on its screen: the upper half Top, the
// lower half Bottom (RGB).
var (
	PatternTop    = [3]byte{0x20, 0xC0, 0x60}
	PatternBottom = [3]byte{0xC0, 0x20, 0xA0}
)

// Marker starts every line the guest prints.
const Marker = "thinhost-guest: "

// Cmdline is the guest's kernel command line.
const Cmdline = "console=ttyS0 quiet panic=-1"

// Profile is the example profile whose vm "guest" is the test guest.
const Profile = "examples/qemu-test.hcl"

// Kernel is the kernel a build of Profile boots, host and test guest
// alike, from the lock file at lockPath ("" = the one beside the profile;
// a missing one is resolved and written, as a build does) through the
// cache in cacheDir. srcDir is the thinhost module's source.
func Kernel(ctx context.Context, srcDir, cacheDir, lockPath string, offline bool) (*builder.Kernel, error) {
	return KernelOf(ctx, filepath.Join(srcDir, Profile), nil, cacheDir, lockPath, offline)
}

// KernelOf is the kernel the profile at path boots with the variables
// vars ("name=value"), pinned by the lock file at lockPath: the guest's
// modules must be that kernel's, as the guest boots the host's kernel
// (examples/laptop.hcl's test guest).
func KernelOf(ctx context.Context, path string, vars []string, cacheDir, lockPath string, offline bool) (*builder.Kernel, error) {
	p, diags := profiles.Parse(path, profiles.Options{Vars: vars})
	if diags.HasErrors() {
		return nil, fmt.Errorf("read %s: %s", path, diags.Error())
	}
	return builder.LockedKernel(ctx, builder.LockedKernelConfig{Profile: p, LockPath: lockPath, CacheDir: cacheDir, Offline: offline})
}

// Build writes the guest initramfs (newc cpio) to out, with the modules
// of kernel k (the guest boots the host's kernel); srcDir is the thinhost
// module's source.
func Build(ctx context.Context, srcDir string, k *builder.Kernel, out string) error {
	if k.ModulesDir == "" {
		return fmt.Errorf("build test guest: kernel %s has no modules", k.Image)
	}
	set, err := initramfs.Closure(k.ModulesDir, k.Release, Modules, nil)
	if err != nil {
		return fmt.Errorf("build test guest: %w", err)
	}
	tmp, err := os.MkdirTemp("", "testguest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	initBin := filepath.Join(tmp, "init")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./internal/testguest/guestinit")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test guest init: %w: %s", err, b)
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755), cpio.Directory("sys", 0o755),
		cpio.Directory("modules", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(initData, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	var order []string
	for _, m := range set.Modules {
		data, err := os.ReadFile(filepath.Join(set.Dir, m.Path))
		if err != nil {
			return err
		}
		name := m.Name + ".ko"
		order = append(order, name)
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: "modules/" + name, Mode: cpio.S_IFREG | 0o644}))
	}
	recs = append(recs, cpio.StaticFile("modules/order", strings.Join(order, "\n")+"\n", 0o644))
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return fmt.Errorf("write test guest initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// PatternError says how img (a screenshot) differs from the test guest's
// screen filling it: nil when its upper half is PatternTop and its lower
// half PatternBottom, sampled on a grid away from the middle line.
func PatternError(img image.Image) error {
	b := img.Bounds()
	is := func(x, y int, want [3]byte) bool {
		r, g, bl, _ := img.At(x, y).RGBA()
		return byte(r>>8) == want[0] && byte(g>>8) == want[1] && byte(bl>>8) == want[2]
	}
	var top, bottom, n int
	for i := 1; i < 20; i++ {
		x := b.Min.X + b.Dx()*i/20
		for j := 1; j < 8; j++ {
			n++
			if is(x, b.Min.Y+b.Dy()*j/20, PatternTop) {
				top++
			}
			if is(x, b.Min.Y+b.Dy()*(j+12)/20, PatternBottom) {
				bottom++
			}
		}
	}
	if top < n*9/10 || bottom < n*9/10 {
		r, g, bl, _ := img.At(b.Min.X+b.Dx()/2, b.Min.Y+b.Dy()/4).RGBA()
		return fmt.Errorf("the screen (%dx%d) is not the test guest's: %d/%d upper samples are %x, %d/%d lower ones %x (the middle of the upper half is %02x%02x%02x)",
			b.Dx(), b.Dy(), top, n, PatternTop, bottom, n, PatternBottom, r>>8, g>>8, bl>>8)
	}
	return nil
}
