package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestEncryptedData is the encrypted data partition (storage { encrypt =
// true }) end to end: the first boot asks on the serial console for a new
// passphrase, twice, makes LUKS2 with ext4 inside and gets ready with the
// data partition encrypted; the image's partition then holds a LUKS2
// header (cryptsetup luksDump) and no ext4 in the clear. The second boot
// asks for the passphrase: a wrong one is said and asked again, never
// formats anything (the header's UUID and the boot count carry over), and
// the right one brings the same data partition back.
func TestEncryptedData(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	cryptsetup := testenv.NeedTool(t, "cryptsetup")
	root := testenv.RepoRoot()
	img := filepath.Join(t.TempDir(), "enc.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", "encrypt=true", "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	const pass = "correct horse battery"
	// boot types each answer (PROMPT=TEXT) on the serial console once
	// the prompt shows, as run --check --answer does.
	boot := func(answers ...string) *testHost {
		t.Helper()
		var parsed []answer
		for _, a := range answers {
			an, err := parseAnswer(a, false)
			if err != nil {
				t.Fatal(err)
			}
			parsed = append(parsed, an)
		}
		// An *os.File, which QEMU inherits: with an io.Pipe, exec would
		// copy from it and wait for that copy when QEMU exits.
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pw.Close(); pr.Close() })
		h := startHost(t, img, 1024, nil, pr)
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		typed := make(chan error, 1)
		go func() { typed <- answerPrompts(ctx, h.con, h.m, pw, parsed) }()
		h.waitReady(t)
		if err := <-typed; err != nil {
			t.Fatal(err)
		}
		return h
	}

	h := boot("choose its passphrase: ="+pass, "the same passphrase again: ="+pass)
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted)") || !strings.Contains(st, "boot 1") {
		t.Errorf("status after the first boot:\n%s", st)
	}
	if strings.Contains(h.tail(), pass) {
		t.Errorf("the passphrase was echoed on the console:\n%s", h.tail())
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
	if !regexp.MustCompile(`(?m)^Version:\s+2$`).MatchString(first) || !regexp.MustCompile(`(?m)^Label:\s+thinhost-data$`).MatchString(first) {
		t.Fatalf("not LUKS2 labelled thinhost-data (a filesystem inside):\n%s", first)
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

	// Boot 2: a wrong passphrase first.
	h = boot("passphrase for the data partition: =not the passphrase", "wrong passphrase; passphrase for the data partition: ="+pass)
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted)") || !strings.Contains(st, "boot 2") {
		t.Errorf("status after the second boot (the same data partition: boot 2):\n%s", st)
	}
	h.powerOff(t)
	if uuid := func(s string) string { _, u, _ := strings.Cut(s, "UUID:"); return strings.Fields(u)[0] }; uuid(dump()) != uuid(first) {
		t.Error("the LUKS2 header changed after a wrong passphrase")
	}
}

// recoveryKeyRE reads the recovery key hostd shows at the first boot.
var recoveryKeyRE = regexp.MustCompile(`thinhost:     ((?:[0-9]{6}-){7}[0-9]{6})`)

// TestTPMUnlock is storage { encrypt = true  tpm = true } end to end on a
// machine with a TPM 2.0 (swtpm, its state kept between boots as a
// laptop's): the first boot shows a recovery key once and goes on only
// when its last group is typed back; the key is sealed to the TPM. The
// second boot opens the data partition with the TPM, asking nothing. A
// third boot on another TPM (another machine, a cleared TPM) says the TPM
// did not unlock it and takes the recovery key (typed with spaces), then
// seals the key to that TPM: the fourth boot on it asks nothing again.
// The recovery key is never in hostd's log.
func TestTPMUnlock(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "swtpm")
	cryptsetup := testenv.NeedTool(t, "cryptsetup")
	root := testenv.RepoRoot()
	dir := t.TempDir()
	img := filepath.Join(dir, "tpm.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img, "--lock", testCache(t),
		"-var", "encrypt=true", "-var", "tpm_unlock=true", "-var", "guest_autostart=false"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	// boot starts img with the TPM in tpmDir; answer, when set, reads the
	// console and types on the serial console before ready.
	boot := func(tpmDir string, answer func(con *consoleWatch, serial *os.File)) *testHost {
		t.Helper()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pw.Close(); pr.Close() })
		h := startHostConfig(t, qemu.Config{Image: img, MemoryMiB: 1024, Stdin: pr, TPMDir: tpmDir})
		if answer != nil {
			go answer(h.con, pw)
		}
		h.waitReady(t)
		return h
	}
	tpmA, tpmB := filepath.Join(dir, "tpm-a"), filepath.Join(dir, "tpm-b")

	keyCh := make(chan string, 1)
	h := boot(tpmA, func(con *consoleWatch, serial *os.File) {
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
	if !strings.Contains(st, "(encrypted)") || !strings.Contains(st, "boot 1") || strings.Contains(st, "tpm       ") {
		t.Errorf("status after the first boot (encrypted, sealed to the TPM):\n%s", st)
	}
	if logs := h.ctl(t, "logs"); strings.Contains(logs, key) || strings.Contains(logs, strings.ReplaceAll(key, "-", "")) {
		t.Errorf("the recovery key is in hostd's log")
	}
	h.powerOff(t)
	dev := dataLoop(t, img)
	meta, err := exec.Command(cryptsetup, "luksDump", dev).CombinedOutput()
	if err != nil || !strings.Contains(string(meta), "thinhost-tpm2") || strings.Count(string(meta), ": luks2\n") < 2 {
		t.Errorf("the header should hold the recovery keyslot, the TPM's and its token: %v\n%s", err, meta)
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

	// Boot 3: another TPM. The recovery key, typed with spaces.
	h = boot(tpmB, func(con *consoleWatch, serial *os.File) {
		<-con.Await("recovery key (or passphrase): ")
		serial.WriteString(strings.ReplaceAll(key, "-", " ") + "\n")
	})
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted, opened with the recovery key)") || !strings.Contains(st, "boot 3") || strings.Contains(st, "tpm       ") {
		t.Errorf("status after the recovery boot (opened with the key, sealed to the new TPM):\n%s", st)
	}
	if !h.con.Seen("the TPM did not unlock the data partition") {
		t.Errorf("the recovery boot did not say why it asked:\n%s", h.tail())
	}
	h.powerOff(t)

	// Boot 4: the new TPM opens it.
	h = boot(tpmB, nil)
	if st := h.ctl(t, "status"); !strings.Contains(st, "(encrypted, unlocked by the TPM)") || !strings.Contains(st, "boot 4") {
		t.Errorf("status after the fourth boot (the new TPM unlocks it):\n%s", st)
	}
	h.powerOff(t)
}
