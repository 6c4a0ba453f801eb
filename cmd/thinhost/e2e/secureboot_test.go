package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/images/uki"
	"github.com/thinhost/thinhost/internal/secureboot"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestSecureBoot builds the example with secure_boot = "stock" and boots
// it with Secure Boot on (OVMF's Secure Boot build, Microsoft's keys
// enrolled, enforcing): the chain Debian signed — shim, GRUB, the kernel
// — reaches ready, and hostd reports Secure Boot on with the kernel's
// lockdown. Then GRUB on the ESP is changed by one byte, as a tampered
// stick would be: shim refuses it, and run --check says so instead of
// timing out; then shim itself: the firmware refuses it. Then the A/B
// update flow on this chain (updateFlow), Secure Boot on: GRUB counts the
// trial's boots down in its environment block (save_env), which GRUB's
// lockdown under shim must allow; the first update is A's own build.
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

	// The image as built, for the update flow at the end; img is
	// tampered with below.
	imgA := filepath.Join(t.TempDir(), "a.img")
	if out, err := exec.Command("cp", "--sparse=always", img, imgA).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}

	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--check", "--snapshot", "-v", "--timeout", "5m")
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

	fw, err := qemu.FindSecureBootOVMF()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("update", func(t *testing.T) {
		updateFlow(t, updateChain{fw: fw, vars: []string{"secure_boot=stock"}, imgA: imgA})
	})
}

// TestOwnKeys is the own-keys chain (secure_boot = "own") on OVMF: thinhost
// keys makes a set; the build signs systemd-boot and a unified kernel
// image (kernel, initramfs and command line in one file) with db's key and
// puts the enrollment files on the ESP. Booted with Secure Boot firmware
// in setup mode, systemd-boot enrolls the keys, restarts, and the signed
// chain reaches ready with Secure Boot on and the kernel locked down; the
// firmware's variables are kept (run --vars), as a laptop keeps them. The
// stock store (Microsoft's keys) refuses the loader. A/B updates work on
// this chain as on the others (updateFlow; its rollback leg runs in
// TestUpdate, on the same systemd-boot), and an update signed with other
// keys is refused. A unified kernel image changed by one byte
// of its kernel is refused under the enrolled keys: the signature covers
// the kernel, its initramfs and its command line.
func TestOwnKeys(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if stdout, stderr, code := runCLI(t, "keys", keys, "--name", "test"); code != 0 || !strings.Contains(stdout, "db thinhost (test)") {
		t.Fatalf("keys exited %d:\n%s\n%s", code, stdout, stderr)
	}
	set, err := secureboot.Load(keys)
	if err != nil {
		t.Fatal(err)
	}
	vars := []string{"secure_boot=own", "secure_boot_keys=" + keys}
	img := filepath.Join(dir, "own.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", vars[0], "-var", vars[1], "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	imagetest.Check(t, img)
	loader := imagetest.ReadESPFile(t, img, layout.BootloaderPath)
	ukiImg := imagetest.ReadESPFile(t, img, layout.UKIPath("a"))
	for name, b := range map[string][]byte{"systemd-boot": loader, "the unified kernel image": ukiImg} {
		if err := secureboot.Verify(b, set.DB.Cert); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := secureboot.Verify(b, set.KEK.Cert); err == nil {
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
	// The image as built, for the changed-kernel boot at the end (the
	// update flow boots and updates img).
	tampered := filepath.Join(dir, "tampered.img")
	if out, err := exec.Command("cp", "--sparse=always", img, tampered).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}

	// Setup mode: the loader enrolls the keys, restarts, and the chain
	// boots with them enforced. The variables stay in nvram.fd.
	nvram := filepath.Join(dir, "nvram.fd")
	stdout, stderr, code = runCLI(t, "run", img, "--secure-boot", "--vars", nvram, "--check", "--snapshot", "-v", "--timeout", "6m")
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

	// Updates, with the enrolled keys.
	code4, err := qemu.FindSecureBootOVMF()
	if err != nil {
		t.Fatal(err)
	}
	enrolled := &qemu.Firmware{Code: code4.Code, Vars: nvram, SecureBoot: true}
	// An update signed with another key set is refused by hostd before
	// it gets a slot: the API token alone installs no host.
	foreign := filepath.Join(dir, "foreign.img")
	if out, err := exec.Command("cp", "--sparse=always", img, foreign).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	other, err := secureboot.Generate(filepath.Join(dir, "other-keys"), "other")
	if err != nil {
		t.Fatal(err)
	}
	resignUKI(t, foreign, other)
	t.Run("update", func(t *testing.T) {
		// The rollback leg is TestUpdate's: the same systemd-boot counts
		// the tries there.
		updateFlow(t, updateChain{fw: enrolled, vars: vars, imgA: img, noRollback: true,
			whileA: func(t *testing.T, h *testHost) {
				stdout, stderr, code := runCLI(t, append(h.ctlArgs(testToken), "update", foreign)...)
				if code == 0 || !strings.Contains(stderr, "not signed by a key in this laptop's db") {
					t.Errorf("an update signed with other keys (exit %d):\n%s%s", code, stdout, stderr)
				}
				if st := h.ctl(t, "status"); !strings.Contains(st, "b     empty") {
					t.Errorf("slot b after the refused update:\n%s", st)
				}
			}})
	})

	// One byte of the kernel inside the image changed: with the keys
	// enrolled, the loader's start of the image is refused.
	ukiImg = imagetest.ReadESPFile(t, tampered, layout.UKIPath("a"))
	kernel, err := uki.SectionData(ukiImg, ".linux")
	if err != nil {
		t.Fatal(err)
	}
	kernel[len(kernel)/2] ^= 0xff // a window into ukiImg
	imagetest.WriteESPFile(t, tampered, layout.UKIPath("a"), ukiImg)
	stdout, stderr, code = runCLI(t, "run", tampered, "--secure-boot", "--vars", nvram, "--check", "--snapshot", "--timeout", "5m")
	if code == 0 || !strings.Contains(stderr, "Secure Boot refused the boot chain") || !strings.Contains(stderr, "Secure Boot on: the keys of "+nvram) {
		t.Fatalf("a changed kernel image was not refused (exit %d):\n%s%s", code, stdout, stderr)
	}
	t.Logf("changed kernel image:\n%s", stderr)
}

// resignUKI replaces the unified kernel image of img's slot a with the
// same sections assembled on the build machine's systemd stub and signed
// with set, as a build with those keys would be.
func resignUKI(t *testing.T, img string, set *secureboot.Keys) {
	t.Helper()
	old := imagetest.ReadESPFile(t, img, layout.UKIPath("a"))
	sec := map[string][]byte{}
	for _, n := range []string{".osrel", ".cmdline", ".initrd", ".linux"} {
		b, err := uki.SectionData(old, n)
		if err != nil {
			t.Fatal(err)
		}
		sec[n] = b
	}
	stub, err := os.ReadFile(builder.StubPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := uki.Assemble(stub, uki.Sections(string(sec[".osrel"]), string(sec[".cmdline"]), sec[".linux"], sec[".initrd"]))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = set.Sign(b); err != nil {
		t.Fatal(err)
	}
	imagetest.WriteESPFile(t, img, layout.UKIPath("a"), b)
}
