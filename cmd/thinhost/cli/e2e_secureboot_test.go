package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/secureboot"
	"github.com/thinhost/thinhost/images/uki"
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

// TestOwnKeys is the own-keys chain (secure_boot = "own") on OVMF: thinhost
// keys makes a set; the build signs systemd-boot and a unified kernel
// image (kernel, initramfs and command line in one file) with db's key and
// puts the enrollment files on the ESP. Booted with Secure Boot firmware
// in setup mode, systemd-boot enrolls the keys, restarts, and the signed
// chain reaches ready with Secure Boot on and the kernel locked down. The
// stock store (Microsoft's keys) refuses the loader; and a unified kernel
// image changed by one byte of its kernel is refused under the enrolled
// keys: the signature covers the kernel, its initramfs and its command
// line.
func TestOwnKeys(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if stdout, stderr, code := runCLI(t, "keys", keys, "--name", "test"); code != 0 || !strings.Contains(stdout, "db thinhost (test)") {
		t.Fatalf("keys exited %d:\n%s\n%s", code, stdout, stderr)
	}
	db, err := secureboot.Load(keys)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "own.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", "secure_boot=own", "-var", "secure_boot_keys=" + keys, "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	imagetest.Check(t, img)
	loader := imagetest.ReadESPFile(t, img, layout.BootloaderPath)
	ukiImg := imagetest.ReadESPFile(t, img, layout.UKIPath("a"))
	for name, b := range map[string][]byte{"systemd-boot": loader, "the unified kernel image": ukiImg} {
		if err := secureboot.Verify(b, db.DB.Cert); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := secureboot.Verify(b, db.KEK.Cert); err == nil {
			t.Errorf("%s verifies with KEK's certificate", name)
		}
	}
	if sbverify, err := exec.LookPath("sbverify"); err == nil {
		f := filepath.Join(dir, "linux.efi")
		os.WriteFile(f, ukiImg, 0o644)
		if out, err := exec.Command(sbverify, "--cert", filepath.Join(keys, "db.crt"), f).CombinedOutput(); err != nil {
			t.Errorf("sbverify: %v\n%s", err, out)
		}
	}
	cmdline, err := uki.SectionData(ukiImg, ".cmdline")
	if err != nil || !strings.Contains(string(cmdline), "panic=10") || strings.Contains(string(cmdline), layout.SlotArg) {
		t.Errorf("the image's command line (no slot: one image serves either): %q %v", cmdline, err)
	}
	entry := string(imagetest.ReadESPFile(t, img, layout.EntryPath("a")))
	conf := string(imagetest.ReadESPFile(t, img, layout.LoaderConfPath))
	if !strings.Contains(entry, "efi /"+layout.UKIPath("a")) || !strings.Contains(conf, "secure-boot-enroll force") {
		t.Errorf("entry:\n%s\nloader.conf:\n%s", entry, conf)
	}
	for _, f := range []string{"PK.auth", "KEK.auth", "db.auth", "db.cer"} {
		imagetest.ReadESPFile(t, img, layout.EnrollKeysDir+"/"+f)
	}
	if t.Failed() {
		return
	}

	// Setup mode: the loader enrolls the keys, restarts, and the chain
	// boots with them enforced.
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "--snapshot", "-v", "--timeout", "6m")
	if code != 0 || !strings.Contains(stdout, "\nsecure boot: on (lockdown: integrity)\n") || !strings.Contains(stdout, "health: ok") ||
		!strings.Contains(stderr, "Enrolling secure boot keys from directory") || !strings.Contains(stderr, "Secure Boot in setup mode") {
		t.Fatalf("the own-keys chain did not enroll and boot with Secure Boot on (exit %d):\n%s%s", code, stdout, stderr)
	}
	t.Logf("run --secure-boot --check:\n%s", stdout)

	// Microsoft's keys, as the laptop shipped: the firmware refuses it.
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--secure-boot-keys", "microsoft", "--check", "--snapshot", "--timeout", "5m")
	if code == 0 || !strings.Contains(stderr, "Secure Boot refused the boot chain: the firmware") {
		t.Fatalf("the stock store did not refuse the own-keys loader (exit %d):\n%s%s", code, stdout, stderr)
	}

	// One byte of the kernel inside the image changed: after enrolling,
	// the loader's start of the image is refused.
	kernel, err := uki.SectionData(ukiImg, ".linux")
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(ukiImg, kernel) + len(kernel)/2
	ukiImg[off] ^= 0xff
	imagetest.WriteESPFile(t, img, layout.UKIPath("a"), ukiImg)
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "--snapshot", "--timeout", "5m")
	if code == 0 || !strings.Contains(stderr, "Secure Boot refused the boot chain") {
		t.Fatalf("a changed kernel image was not refused (exit %d):\n%s%s", code, stdout, stderr)
	}
	t.Logf("changed kernel image:\n%s", stderr)
}
