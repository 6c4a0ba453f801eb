package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestTPMUnlock is storage { encrypt = true  tpm = true } end to end, on
// the own-keys chain (TPM unlocking needs it) with Secure Boot on and a
// TPM 2.0 (swtpm, its state kept between boots as a laptop's):
//   - enrollment: the firmware in setup mode, systemd-boot enrolls the
//     keys and restarts; the variables stay, as in a laptop's NVRAM;
//   - boot 1 shows a recovery key once and goes on only when its last
//     group is typed back (a wrong group is asked again); the header is
//     LUKS2 labelled thinhost-data with the TPM's keyslot and token, no
//     ext4 in the clear; the key is never in hostd's log;
//   - boot 2 opens the partition with the TPM, asking nothing;
//   - boot 3, on another TPM (another machine, a cleared TPM), says the
//     TPM did not unlock it and asks: a wrong key is said and asked again
//     (never echoed, nothing formatted: the header's UUID stays), the
//     recovery key typed with spaces opens it, and the key is sealed to
//     that TPM;
//   - boot 4 on that TPM asks nothing again.
//
// (The passphrase flow without a TPM is TestLaptop's, typed on the panel.)
func TestTPMUnlock(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "swtpm")
	cryptsetup := testenv.NeedTool(t, "cryptsetup")
	root := testenv.RepoRoot()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if stdout, stderr, code := runCLI(t, "keys", keys, "--name", "tpm-test"); code != 0 {
		t.Fatalf("keys exited %d:\n%s\n%s", code, stdout, stderr)
	}
	img := filepath.Join(dir, "tpm.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", "secure_boot=own", "-var", "secure_boot_keys=" + keys,
		"-var", "encrypt=true", "-var", "tpm_unlock=true", "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}

	// Enrollment, in setup mode: the loader enrolls the keys and resets,
	// which ends QEMU (-no-reboot); the variables stay in nvram.
	nvram := filepath.Join(dir, "nvram.fd")
	setup, err := qemu.FindSecureBootSetupOVMF()
	if err != nil {
		t.Fatal(err)
	}
	con := qemu.NewConsole(400, api.ReadyLine)
	m, err := qemu.Start(context.Background(), qemu.Config{Image: img, Firmware: setup, VarsFile: nvram, NoReboot: true, Snapshot: true,
		MemoryMiB: 1024, Stdout: con, Stderr: con})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(4 * time.Minute):
		m.Kill()
		t.Fatalf("no reset after enrolling the keys:\n%s", strings.Join(con.Tail(), "\n"))
	}
	sb, err := qemu.FindSecureBootOVMF()
	if err != nil {
		t.Fatal(err)
	}
	enrolled := &qemu.Firmware{Code: sb.Code, Vars: nvram, SecureBoot: true}

	// boot starts img with Secure Boot on and the TPM in tpmDir; answer,
	// when set, reads the console and types on the serial console.
	boot := func(tpmDir string, answer func(con *qemu.Console, serial *os.File)) *testHost {
		t.Helper()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pw.Close(); pr.Close() })
		h := startHostConfig(t, qemu.Config{Image: img, MemoryMiB: 1024, Stdin: pr, TPMDir: tpmDir, Firmware: enrolled})
		if answer != nil {
			go answer(h.con, pw)
		}
		h.waitReady(t)
		if !h.con.Seen(api.SecureBootPrefix + "on") {
			t.Fatalf("Secure Boot is not on:\n%s", h.tail())
		}
		return h
	}
	tpmA, tpmB := filepath.Join(dir, "tpm-a"), filepath.Join(dir, "tpm-b")

	keyCh := make(chan string, 1)
	h := boot(tpmA, func(con *qemu.Console, serial *os.File) {
		<-con.Await("type its last group to go on: ")
		m := recoveryKeyRE.FindStringSubmatch(strings.Join(con.Tail(), "\n"))
		if m == nil {
			keyCh <- ""
			return
		}
		keyCh <- m[1]
		serial.WriteString("000000\n") // not its last group: asked again
		<-con.Await("that is not the last group")
		serial.WriteString(m[1][len(m[1])-6:] + "\n")
	})
	key := <-keyCh
	if key == "" {
		t.Fatalf("no recovery key on the console:\n%s", h.tail())
	}
	st := h.ctl(t, "status")
	if !strings.Contains(st, "(encrypted)") || !strings.Contains(st, "boot 1") || strings.Contains(st, "tpm       ") || !strings.Contains(st, "health    ok") {
		t.Errorf("status after the first boot (encrypted, sealed to the TPM):\n%s", st)
	}
	if logs := h.ctl(t, "logs"); strings.Contains(logs, key) || strings.Contains(logs, strings.ReplaceAll(key, "-", "")) {
		t.Errorf("the recovery key is in hostd's log")
	}
	h.powerOff(t)
	dev := dataLoop(t, img)
	dump := func() string {
		out, err := exec.Command(cryptsetup, "luksDump", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("cryptsetup luksDump: %v\n%s", err, out)
		}
		return string(out)
	}
	first := dump()
	if !regexp.MustCompile(`(?m)^Version:\s+2$`).MatchString(first) || !regexp.MustCompile(`(?m)^Label:\s+thinhost-data$`).MatchString(first) ||
		!strings.Contains(first, "thinhost-tpm2") || strings.Count(first, ": luks2\n") != 2 {
		t.Errorf("want LUKS2 labelled thinhost-data (a filesystem inside), the recovery key's and the TPM's keyslots and the TPM's token:\n%s", first)
	}
	// No ext4 in the clear: its superblock magic would be at 1080 after
	// LUKS2's 16 MiB header.
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 2)
	_, err = f.ReadAt(magic, 16<<20+1080)
	f.Close()
	if err != nil || bytes.Equal(magic, []byte{0x53, 0xef}) {
		t.Errorf("an ext4 superblock in the clear after the LUKS2 header (%v)", err)
	}

	// Boot 2: the TPM opens it; nothing is asked.
	h = boot(tpmA, nil)
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted, unlocked by the TPM)") || !strings.Contains(st, "boot 2") {
		t.Errorf("status after the second boot (the TPM unlocks it):\n%s", st)
	}
	if h.con.Seen("recovery key") {
		t.Errorf("the second boot asked for the recovery key:\n%s", h.tail())
	}
	h.powerOff(t)

	// Boot 3: another TPM. A wrong key, then the recovery key with spaces.
	const wrong = "111111-222222-333333-444444-555555-666666-777777-888888"
	h = boot(tpmB, func(con *qemu.Console, serial *os.File) {
		<-con.Await("recovery key (or passphrase): ")
		serial.WriteString(wrong + "\n")
		<-con.Await("wrong passphrase; passphrase for the data partition: ")
		serial.WriteString(strings.ReplaceAll(key, "-", " ") + "\n")
	})
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted, opened with the recovery key)") || !strings.Contains(st, "boot 3") || strings.Contains(st, "tpm       ") {
		t.Errorf("status after the recovery boot (opened with the key, sealed to the new TPM):\n%s", st)
	}
	if !h.con.Seen("the TPM did not unlock the data partition") {
		t.Errorf("the recovery boot did not say why it asked:\n%s", h.tail())
	}
	if strings.Contains(h.tail(), wrong) {
		t.Errorf("the typed key was echoed on the console:\n%s", h.tail())
	}
	h.powerOff(t)
	if uuid := func(s string) string { _, u, _ := strings.Cut(s, "UUID:"); return strings.Fields(u)[0] }; uuid(dump()) != uuid(first) {
		t.Error("the LUKS2 header's UUID changed: something was formatted")
	}

	// Boot 4: the new TPM opens it.
	h = boot(tpmB, nil)
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted, unlocked by the TPM)") || !strings.Contains(st, "boot 4") {
		t.Errorf("status after the fourth boot (the new TPM unlocks it):\n%s", st)
	}
	h.powerOff(t)
}

// recoveryKeyRE reads the recovery key hostd shows at the first boot.
var recoveryKeyRE = regexp.MustCompile(`thinhost:     ((?:[0-9]{6}-){7}[0-9]{6})`)
