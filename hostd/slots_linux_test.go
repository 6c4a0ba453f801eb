package hostd

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foxboron/go-uefi/efi/signature"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/secureboot"
)

// slotTest is an ESP in a directory, as a build leaves it (slot a, good,
// version 1), and slot b's system partition as a file.
type slotTest struct {
	esp, sysDev string
	// efivars is the firmware's variables (empty: Secure Boot off).
	efivars string
	files   map[string]string
}

func newSlotTest(t *testing.T) *slotTest {
	t.Helper()
	dir := t.TempDir()
	st := &slotTest{esp: filepath.Join(dir, "esp"), sysDev: filepath.Join(dir, "system-b"), efivars: filepath.Join(dir, "efivars")}
	info := layout.SlotInfo{Build: "old", Loader: layout.LoaderSystemdBoot, Title: "thinhost x", Cmdline: "quiet"}
	for p, c := range map[string]string{
		layout.LoaderConfPath:    "default thinhost-a.conf\n", // an image from before slots
		layout.EntryPath("a"):    layout.SystemdBootEntry("a", info, 1),
		layout.KernelPath("a"):   "kernel a",
		layout.InitrdPath("a"):   "initrd a",
		layout.KernelPath("b"):   "a stale kernel b",
		layout.EntryPath("b"):    "title a stale slot b\nversion 9\n",
		layout.SlotInfoPath("a"): `{"build":"old","loader":"systemd-boot"}`,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(st.esp, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(st.esp, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(st.sysDev, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	st.files = map[string]string{api.UpdateSystem: "hsqs" + strings.Repeat("s", 5000), api.UpdateKernel: "kernel new", api.UpdateInitrd: "initrd new"}
	return st
}

func (st *slotTest) manifest() *api.UpdateManifest {
	m := &api.UpdateManifest{Info: layout.SlotInfo{Build: "new", Loader: layout.LoaderSystemdBoot, Title: "thinhost y", Cmdline: "quiet panic=10"}}
	for _, n := range []string{api.UpdateSystem, api.UpdateKernel, api.UpdateInitrd} {
		sum := sha256.Sum256([]byte(st.files[n]))
		m.Files = append(m.Files, api.UpdateFile{Name: n, Size: int64(len(st.files[n])), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

// apply streams m (and st.files, as sent) through applyUpdate into slot b.
func (st *slotTest) apply(t *testing.T, m *api.UpdateManifest, sent map[string]string, room int64) (*api.UpdateResult, error) {
	t.Helper()
	return st.applyRoom(t, "b", m, sent, room)
}

// applyTo is apply into slot target, with room to spare.
func (st *slotTest) applyTo(t *testing.T, target string, m *api.UpdateManifest, sent map[string]string) (*api.UpdateResult, error) {
	t.Helper()
	return st.applyRoom(t, target, m, sent, 1<<20)
}

func (st *slotTest) applyRoom(t *testing.T, target string, m *api.UpdateManifest, sent map[string]string, room int64) (*api.UpdateResult, error) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(api.WriteUpdate(pw, m, func(name string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(sent[name])), nil
		}))
	}()
	defer pr.Close()
	tr := tar.NewReader(pr)
	if _, err := tr.Next(); err != nil { // the manifest, which slots.update reads
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		t.Fatal(err)
	}
	return applyUpdate(context.Background(), slog.Default(), st.esp, st.sysDev, room, target, tr, m, 3, st.efivars)
}

func (st *slotTest) read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(st.esp, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplyUpdate: the update lands in slot b (system image at the
// partition's start, boot files and slot.json on the ESP) under an entry
// with a boot counter and a version above slot a's; loader.conf picks
// entries by order; slot a is untouched; the slots read back as such.
func TestApplyUpdate(t *testing.T) {
	st := newSlotTest(t)
	res, err := st.apply(t, st.manifest(), st.files, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != "b" || res.Version != 2 || res.Tries != 3 || res.Build != "new" {
		t.Errorf("result = %+v (the stale b entry's version 9 must not count: it is replaced)", res)
	}
	entry := st.read(t, layout.EntryDir+"/thinhost-b+3.conf")
	if !strings.Contains(entry, "version 2\n") || !strings.Contains(entry, "options quiet panic=10 thinhost.slot=b") {
		t.Errorf("slot b's entry:\n%s", entry)
	}
	if _, err := os.Stat(filepath.Join(st.esp, layout.EntryPath("b"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("slot b's old entry is still there: %v", err)
	}
	if got := st.read(t, layout.KernelPath("b")); got != "kernel new" {
		t.Errorf("slot b's kernel = %q", got)
	}
	if got := st.read(t, layout.KernelPath("a")); got != "kernel a" {
		t.Errorf("slot a's kernel = %q", got)
	}
	if got := st.read(t, layout.LoaderConfPath); got != layout.LoaderConf {
		t.Errorf("loader.conf = %q", got)
	}
	sys, _ := os.ReadFile(st.sysDev)
	if !strings.HasPrefix(string(sys), st.files[api.UpdateSystem]) || len(sys) != 1<<20 {
		t.Errorf("the system partition does not start with the image (%d bytes)", len(sys))
	}
	slots := readSlots(st.esp, "a", layout.LoaderSystemdBoot)
	if len(slots) != 2 || slots[0].State != "good" || !slots[0].Booted || slots[1].State != "trying" ||
		slots[1].TriesLeft != 3 || slots[1].Build != "new" || slots[1].Version != 2 {
		t.Errorf("slots = %+v", slots)
	}

	// systemd-boot counts a try down; hostd marks the slot good.
	if err := os.Rename(filepath.Join(st.esp, layout.EntryDir, "thinhost-b+3.conf"), filepath.Join(st.esp, layout.EntryDir, "thinhost-b+2-1.conf")); err != nil {
		t.Fatal(err)
	}
	if err := markGood(slog.Default(), st.esp, "b"); err != nil {
		t.Fatal(err)
	}
	if slots := readSlots(st.esp, "b", layout.LoaderSystemdBoot); slots[1].State != "good" || !slots[1].Booted {
		t.Errorf("after markGood: %+v", slots)
	}
	// Used up: the slot shows as failed.
	if err := os.Rename(filepath.Join(st.esp, layout.EntryPath("b")), filepath.Join(st.esp, layout.EntryDir, "thinhost-b+0-3.conf")); err != nil {
		t.Fatal(err)
	}
	if slots := readSlots(st.esp, "a", layout.LoaderSystemdBoot); slots[1].State != "failed" {
		t.Errorf("a used-up entry: %+v", slots[1])
	}
}

// TestApplyUpdateRefused: what does not fit or does not match is refused,
// and a stream whose bytes differ from the manifest leaves slot b with no
// entry at all (the loader cannot boot it half written).
func TestApplyUpdateRefused(t *testing.T) {
	t.Run("too big", func(t *testing.T) {
		st := newSlotTest(t)
		_, err := st.apply(t, st.manifest(), st.files, 4096)
		if !errors.Is(err, api.ErrUpdateRefused) || !strings.Contains(err.Error(), "does not fit slot b's partition") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("another boot chain", func(t *testing.T) {
		st := newSlotTest(t)
		m := st.manifest()
		m.Info.Loader = layout.LoaderGRUB
		if _, err := st.apply(t, m, st.files, 1<<20); !errors.Is(err, api.ErrUpdateRefused) || !strings.Contains(err.Error(), "boots through grub") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bytes differ", func(t *testing.T) {
		st := newSlotTest(t)
		sent := map[string]string{}
		for k, v := range st.files {
			sent[k] = v
		}
		sent[api.UpdateInitrd] = "initrd NEW" // same length, other bytes
		_, err := st.apply(t, st.manifest(), sent, 1<<20)
		if !errors.Is(err, api.ErrUpdateRefused) || !strings.Contains(err.Error(), "initrd.zst as sent has SHA-256") {
			t.Errorf("err = %v", err)
		}
		for name := range entryFiles(st.esp) {
			if strings.HasPrefix(name, "thinhost-b") {
				t.Errorf("slot b has entry %s after a failed update", name)
			}
		}
		if _, err := os.Stat(filepath.Join(st.esp, layout.InitrdPath("b"))); err == nil {
			t.Error("the bad initramfs was put in place")
		}
		if got := st.read(t, layout.EntryPath("a")); !strings.Contains(got, "thinhost.slot=a") {
			t.Errorf("slot a's entry changed: %q", got)
		}
	})
}

// TestApplyUpdateGRUB: on a disk that boots through shim and GRUB, the
// update adds slot b's menu entry and puts it on trial in the environment
// block; booted to ready, slot b becomes grub.cfg's default and the trial
// ends; a trial whose boots are used up shows as failed.
func TestApplyUpdateGRUB(t *testing.T) {
	st := newSlotTest(t)
	infoA := layout.SlotInfo{Build: "old", Loader: layout.LoaderGRUB, Title: "thinhost x", Cmdline: "quiet"}
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(st.esp, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(st.esp, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info, _ := json.Marshal(infoA)
	write(layout.SlotInfoPath("a"), info)
	write(layout.GRUBConfigPath, []byte(layout.GRUBConfig("a", map[string]layout.SlotInfo{"a": infoA})))
	write(layout.GRUBEnvPath, layout.GRUBEnv(nil))
	m := st.manifest()
	m.Info.Loader = layout.LoaderGRUB
	res, err := st.apply(t, m, st.files, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != "b" || res.Tries != 3 {
		t.Errorf("result = %+v", res)
	}
	cfg := st.read(t, layout.GRUBConfigPath)
	if !strings.Contains(cfg, "set thinhost_slot=a\n") || !strings.Contains(cfg, "--id thinhost-b {") || !strings.Contains(cfg, "'thinhost.slot=b'") {
		t.Errorf("grub.cfg after the update:\n%s", cfg)
	}
	if env := readGRUBEnv(st.esp); env[layout.GRUBTry] != "b" || env[layout.GRUBTries] != "3" {
		t.Errorf("grubenv = %v", env)
	}
	slots := readSlots(st.esp, "a", layout.LoaderGRUB)
	if slots[0].State != "good" || slots[1].State != "trying" || slots[1].TriesLeft != 3 || slots[1].Build != "new" {
		t.Errorf("slots = %+v", slots)
	}

	// GRUB counted a boot (save_env) and slot b got ready.
	write(layout.GRUBEnvPath, layout.GRUBEnv(map[string]string{layout.GRUBTry: "b", layout.GRUBTries: "2"}))
	if err := markGoodGRUB(slog.Default(), st.esp, "b"); err != nil {
		t.Fatal(err)
	}
	if cfg := st.read(t, layout.GRUBConfigPath); !strings.Contains(cfg, "set thinhost_slot=b\n") || !strings.Contains(cfg, "--id thinhost-a {") {
		t.Errorf("grub.cfg after slot b got ready:\n%s", cfg)
	}
	if env := readGRUBEnv(st.esp); len(env) != 0 {
		t.Errorf("the trial did not end: %v", env)
	}
	if slots := readSlots(st.esp, "b", layout.LoaderGRUB); slots[0].State != "good" || slots[1].State != "good" || !slots[1].Booted {
		t.Errorf("slots = %+v", slots)
	}

	// The next update goes to slot a; its boots run out: GRUB boots b.
	if _, err := st.applyTo(t, "a", m, st.files); err != nil {
		t.Fatal(err)
	}
	if cfg := st.read(t, layout.GRUBConfigPath); !strings.Contains(cfg, "set thinhost_slot=b\n") {
		t.Errorf("the running slot is not the default while a is on trial:\n%s", cfg)
	}
	write(layout.GRUBEnvPath, layout.GRUBEnv(map[string]string{layout.GRUBTry: "a", layout.GRUBTries: "0"}))
	if slots := readSlots(st.esp, "b", layout.LoaderGRUB); slots[0].State != "failed" || slots[1].State != "good" {
		t.Errorf("slots after the trial ran out = %+v", slots)
	}
}

// TestAPIAddrs: loopback only, unless on the host's network.
func TestAPIAddrs(t *testing.T) {
	if got := strings.Join(APIAddrs(8484, false), " "); got != "127.0.0.1:8484 [::1]:8484" {
		t.Errorf("loopback = %s", got)
	}
	if got := strings.Join(APIAddrs(8484, true), " "); got != ":8484" {
		t.Errorf("host network = %s", got)
	}
}

// TestSlotsClose: the shutdown ends an update's context and waits for the
// ESP to be let go; after it, the ESP is not mounted again.
func TestSlotsClose(t *testing.T) {
	s := newSlots(slog.Default())
	s.espMu.Lock()
	released := make(chan struct{})
	go func() {
		<-s.stopping.Done() // an update sees its context end ...
		time.Sleep(50 * time.Millisecond)
		close(released)
		s.espMu.Unlock() // ... and unmounts the ESP
	}()
	s.close()
	select {
	case <-released:
	default:
		t.Fatal("close returned while the ESP was still held")
	}
	if err := s.withESP(context.Background(), func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("the ESP was mounted after the shutdown began: %v", err)
	}
}

// TestApplyUpdateUKI: on the own-keys chain an update carries one signed
// unified kernel image: it lands in slot b, whose entry starts it (efi)
// with no command line of its own, and loader.conf keeps enrolling keys
// from setup mode. Kernel files are refused on this chain.
func TestApplyUpdateUKI(t *testing.T) {
	st := newSlotTest(t)
	infoA := layout.SlotInfo{Build: "old", Loader: layout.LoaderUKI, Title: "thinhost x", Cmdline: "quiet"}
	os.Remove(filepath.Join(st.esp, layout.KernelPath("a")))
	os.Remove(filepath.Join(st.esp, layout.InitrdPath("a")))
	os.WriteFile(filepath.Join(st.esp, layout.UKIPath("a")), []byte("uki a"), 0o644)
	os.WriteFile(filepath.Join(st.esp, layout.EntryPath("a")), []byte(layout.SystemdBootEntry("a", infoA, 1)), 0o644)
	if got := readLoader(st.esp); got != layout.LoaderUKI {
		t.Fatalf("readLoader = %s", got)
	}
	st.files[api.UpdateUKI] = "uki new"
	m := &api.UpdateManifest{Info: layout.SlotInfo{Build: "new", Loader: layout.LoaderUKI, Title: "thinhost y", Cmdline: "quiet"}}
	for _, n := range []string{api.UpdateSystem, api.UpdateUKI} {
		sum := sha256.Sum256([]byte(st.files[n]))
		m.Files = append(m.Files, api.UpdateFile{Name: n, Size: int64(len(st.files[n])), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.apply(t, m, st.files, 1<<20); err != nil {
		t.Fatal(err)
	}
	entry := st.read(t, layout.EntryDir+"/thinhost-b+3.conf")
	if !strings.Contains(entry, "efi /"+layout.UKIPath("b")+"\n") || strings.Contains(entry, "options") || strings.Contains(entry, "linux ") {
		t.Errorf("slot b's entry:\n%s", entry)
	}
	if got := st.read(t, layout.UKIPath("b")); got != "uki new" {
		t.Errorf("slot b's image = %q", got)
	}
	if got := st.read(t, layout.LoaderConfPath); got != layout.LoaderConf+layout.LoaderConfEnroll {
		t.Errorf("loader.conf = %q", got)
	}
	// A kernel file on this chain does not pass the manifest's check.
	sum := sha256.Sum256([]byte("k"))
	m.Files = append(m.Files, api.UpdateFile{Name: api.UpdateKernel, Size: 1, SHA256: hex.EncodeToString(sum[:])})
	if err := m.Check(); err == nil {
		t.Error("a kernel in a unified-kernel-image update passed the check")
	}
}

// TestCheckSignedImage: with Secure Boot on, a kernel image must verify
// against a certificate of the firmware's db, as the firmware checks it;
// with Secure Boot off anything passes. An update whose image fails is
// refused before its slot gets an entry.
func TestCheckSignedImage(t *testing.T) {
	stub, err := os.ReadFile("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
	if err != nil {
		t.Skipf("no systemd stub: %v", err)
	}
	mine, err := secureboot.Generate(t.TempDir(), "mine")
	if err != nil {
		t.Fatal(err)
	}
	other, err := secureboot.Generate(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sl := signature.NewSignatureDatabase()
	sl.Append(signature.CERT_X509_GUID, secureboot.Owner, mine.DB.Cert.Raw)
	os.WriteFile(filepath.Join(dir, storage.DBVar), append([]byte{7, 0, 0, 0}, sl.Bytes()...), 0o644)
	os.WriteFile(filepath.Join(dir, storage.SecureBootVar), []byte{6, 0, 0, 0, 1}, 0o644)
	img := filepath.Join(t.TempDir(), "linux.efi")
	for set, ok := range map[*secureboot.Keys]bool{mine: true, other: false} {
		b, err := set.Sign(stub)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(img, b, 0o644)
		if err := storage.CheckSignedImage(dir, img); (err == nil) != ok {
			t.Errorf("signed by %s: %v", set.DB.Cert.Subject.CommonName, err)
		}
	}
	os.WriteFile(filepath.Join(dir, storage.SecureBootVar), []byte{6, 0, 0, 0, 0}, 0o644)
	if err := storage.CheckSignedImage(dir, img); err != nil {
		t.Errorf("Secure Boot off: %v", err)
	}

	// The update: refused, and slot b has no entry to boot.
	os.WriteFile(filepath.Join(dir, storage.SecureBootVar), []byte{6, 0, 0, 0, 1}, 0o644)
	st := newSlotTest(t)
	st.efivars = dir
	os.Remove(filepath.Join(st.esp, layout.KernelPath("a")))
	os.WriteFile(filepath.Join(st.esp, layout.UKIPath("a")), []byte("uki a"), 0o644)
	st.files[api.UpdateUKI] = "not signed by anyone"
	m := &api.UpdateManifest{Info: layout.SlotInfo{Build: "new", Loader: layout.LoaderUKI, Title: "thinhost y"}}
	// The image first, as ctl sends it.
	for _, n := range []string{api.UpdateUKI, api.UpdateSystem} {
		sum := sha256.Sum256([]byte(st.files[n]))
		m.Files = append(m.Files, api.UpdateFile{Name: n, Size: int64(len(st.files[n])), SHA256: hex.EncodeToString(sum[:])})
	}
	if _, err := st.apply(t, m, st.files, 1<<20); err == nil || !strings.Contains(err.Error(), "Secure Boot") {
		t.Fatalf("an unsigned image under Secure Boot: %v", err)
	}
	if sys, _ := os.ReadFile(st.sysDev); strings.Trim(string(sys), "\x00") != "" {
		t.Error("slot b's system partition was written for a refused image")
	}
	for name, e := range entryFiles(st.esp) {
		if e.Slot == "b" {
			t.Errorf("slot b has an entry after the refusal: %s", name)
		}
	}
}
