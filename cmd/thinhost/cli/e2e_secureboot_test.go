package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestSecureBoot builds the example with secure_boot = "stock" and boots
// it with Secure Boot on (OVMF's Secure Boot build, Microsoft's keys
// enrolled, enforcing): the chain Debian signed — shim, GRUB, the kernel
// — reaches ready, and hostd reports Secure Boot on with the kernel's
// lockdown. Then GRUB on the ESP is changed by one byte, as a tampered
// stick would be: shim refuses it, and run --check says so instead of
// timing out; then shim itself: the firmware refuses it.
func TestSecureBoot(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	profile := filepath.Join(root, "examples", "qemu-test.hcl")
	lock := testCache(t)
	img := filepath.Join(t.TempDir(), "sb.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", profile, "-o", img, "--lock", lock,
		"-var", "secure_boot=stock", "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	imagetest.Check(t, img)
	// shim as the removable-media loader, Debian's signed GRUB beside it.
	shim := imagetest.ReadESPFile(t, img, layout.BootloaderPath)
	grub := imagetest.ReadESPFile(t, img, layout.ShimGRUBPath)
	cfg := imagetest.ReadESPFile(t, img, layout.GRUBConfigPath)
	if !bytes.Contains(shim, []byte("shim")) || !bytes.Contains(grub, []byte("Debian Secure Boot CA")) || !bytes.Contains(cfg, []byte(layout.ESPArg+"=$thinhost_esp")) {
		t.Fatalf("the ESP does not hold the signed chain (shim %d bytes, GRUB %d bytes); grub.cfg:\n%s", len(shim), len(grub), cfg)
	}

	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "-v", "--timeout", "5m")
	if code != 0 || !strings.Contains(stdout, "\nsecure boot: on (lockdown: integrity)\n") || !strings.Contains(stdout, "health: ok") ||
		!strings.Contains(stderr, "Secure Boot on: Microsoft's keys, enforcing") {
		t.Fatalf("the signed chain did not boot to a healthy host with Secure Boot on (exit %d):\n%s%s", code, stdout, stderr)
	}
	t.Logf("run --secure-boot --check:\n%s", stdout)
	// GRUB named the ESP it booted from, and hostd found its disk by it.
	if !strings.Contains(stderr, `msg="boot disk"`) || !strings.Contains(stderr, `named_by="GRUB (thinhost.esp=)"`) {
		t.Errorf("hostd did not learn the boot disk from GRUB's thinhost.esp=:\n%s", stderr)
	}

	// One byte of GRUB changed: shim refuses it.
	grub[len(grub)/2] ^= 0xff
	imagetest.WriteESPFile(t, img, layout.ShimGRUBPath, grub)
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "--timeout", "5m")
	if code == 0 || !strings.Contains(stderr, "Secure Boot refused the boot chain") {
		t.Fatalf("a tampered GRUB was not refused by Secure Boot (exit %d):\n%s%s", code, stdout, stderr)
	}
	t.Logf("tampered GRUB:\n%s", stderr)

	// One byte of shim changed: the firmware itself refuses it.
	shim[len(shim)/2] ^= 0xff
	imagetest.WriteESPFile(t, img, layout.BootloaderPath, shim)
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "--timeout", "5m")
	if code == 0 || !strings.Contains(stderr, "Secure Boot refused the boot chain: the firmware") {
		t.Fatalf("a tampered shim was not refused by the firmware (exit %d):\n%s%s", code, stdout, stderr)
	}
}
