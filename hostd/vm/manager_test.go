package vm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/qmpc"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
	"golang.org/x/sys/unix"
)

// sink collects the supervised services' lines ("SERVICE: TEXT").
type sink struct{ testenv.Lines }

func (s *sink) add(l supervise.Line) { s.Add(l.Service + ": " + l.Text) }

func direct(program string, args ...string) (string, []string) { return program, args }

func newManager(t *testing.T, s *sink, specs ...config.VM) *vm.Manager {
	return newManagerIn(t, t.TempDir(), s, specs...)
}

// newManagerIn is newManager with the guests' state and sockets under dir.
func newManagerIn(t *testing.T, dir string, s *sink, specs ...config.VM) *vm.Manager {
	return vm.NewManager(&vm.Manager{
		Log:     testLogger(t),
		Sup:     supervise.New(testLogger(t), s.add),
		Host:    vm.Host{MemBytes: 4 << 30, CPUs: 2, Root: ""},
		Program: direct,
		Env:     os.Environ(),
		// Unix socket paths must stay short.
		StateDir: filepath.Join(dir, "vms"), RunDir: filepath.Join(dir, "run"),
	}, specs)
}

// TestManagerLifecycle runs the test guest under real QEMU (TCG) through
// start, snapshot, reset and stop, reading its console through the
// supervisor: the guest counts its boots in its disk's first sector.
func TestManagerLifecycle(t *testing.T) {
	testenv.NeedE2E(t) // real QEMU: the full suite's
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "qemu-img")
	ctx := context.Background()
	kernel, initrd := testguest.ForTest(t)
	spec := config.VM{Name: "guest", OS: "linux", MemoryBytes: 256 << 20, CPUs: 1, Firmware: "bios",
		DiskSize: 16 << 20, DiskFormat: "qcow2", Kernel: kernel, Initrd: initrd, Cmdline: testguest.Cmdline,
		Display: "none", Network: "none", ShutdownTimeout: 60}
	var s sink
	m := newManager(t, &s, spec)
	defer m.StopAll()

	if err := m.Reset(ctx, "guest"); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Errorf("reset before snapshot: %v", err)
	}
	if err := m.Start(ctx, "guest"); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, "found=none", 1, 2*time.Minute)
	s.Wait(t, "wrote=boot-1", 1, time.Minute)
	if st := m.Status()[0]; st.State != "running" || st.Accel != "tcg" || st.MemoryMiB != 256 || st.DiskBytes == 0 {
		t.Errorf("status = %+v", st)
	}

	// The snapshot shuts the guest down through ACPI and starts it on an
	// overlay over the frozen base.
	if err := m.Snapshot(ctx, "guest", false); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, "power button: powering off", 1, time.Minute)
	s.Wait(t, "found=boot-1", 1, 2*time.Minute)
	s.Wait(t, "wrote=boot-2", 1, time.Minute)
	if st := m.Status()[0]; st.Snapshot.IsZero() || st.OverlayBytes == 0 {
		t.Errorf("status after snapshot = %+v", st)
	}

	// Reset drops boot 2's write: the guest finds boot 1 again.
	if err := m.Reset(ctx, "guest"); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, "found=boot-1", 2, 2*time.Minute)
	if n := s.Count("found=boot-2"); n != 0 {
		t.Errorf("after reset the guest found boot 2's write")
	}

	if err := m.Stop("guest"); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, "power button: powering off", 2, time.Second)
	if st := m.Status()[0]; st.State != "stopped" {
		t.Errorf("status after stop = %+v", st)
	}
}

// TestManagerDiskFull runs the test guest with its disk on a small ext4
// filesystem (a real loop device) that is full when the guest first
// writes: QEMU pauses it and reports the I/O error (its second QMP
// monitor), the guest's status and the manager's problems say why, and
// once space is freed the guest continues by itself and its write lands.
func TestManagerDiskFull(t *testing.T) {
	testenv.NeedE2E(t) // real QEMU and a loop mount: the full suite's
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "qemu-img")
	mkfs := testenv.NeedTool(t, "mkfs.ext4")
	ctx := context.Background()
	kernel, initrd := testguest.ForTest(t)
	// A 32 MiB ext4 where the guest's state lives.
	img := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	mnt := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("loop mount: %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()

	spec := config.VM{Name: "guest", OS: "linux", MemoryBytes: 256 << 20, CPUs: 1, Firmware: "bios",
		DiskSize: 1 << 30, DiskFormat: "qcow2", Kernel: kernel, Initrd: initrd, Cmdline: testguest.Cmdline,
		Display: "none", Network: "none", ShutdownTimeout: 10}
	var s sink
	var notes []string
	var notesMu sync.Mutex
	m := newManagerIn(t, mnt, &s, spec)
	m.Notify = func(line string) {
		notesMu.Lock()
		notes = append(notes, line)
		notesMu.Unlock()
	}
	defer m.StopAll()
	if err := m.Start(ctx, "guest"); err != nil {
		t.Fatal(err)
	}
	// Fill the filesystem (the reserved blocks too: QEMU runs as root)
	// before the guest, still booting, writes its first sector.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	_ = unix.Fallocate(int(f.Fd()), 0, 0, int64(st.Bfree)*st.Bsize)
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	if s.Count("wrote=boot-1") > 0 {
		t.Fatal("the guest wrote before the filesystem was full: the test raced it")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(m.Problems()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no problem reported; status %+v; output:\n%s", m.Status()[0], s.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := m.Problems()[0]; !strings.Contains(p, "vm guest paused: its disk") || !strings.Contains(p, "no space left on the data partition") {
		t.Errorf("problem %q", p)
	}
	if st := m.Status()[0]; st.Problem == "" || len(st.Events) == 0 {
		t.Errorf("status %+v", st)
	}
	// Room again: the guest continues within hostd's 10 s look, and its
	// write lands.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, "wrote=boot-1", 1, time.Minute)
	deadline = time.Now().Add(30 * time.Second)
	for len(m.Problems()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the problem stayed: %q", m.Problems())
		}
		time.Sleep(100 * time.Millisecond)
	}
	notesMu.Lock()
	defer notesMu.Unlock()
	if len(notes) < 2 || !strings.Contains(notes[len(notes)-1], "vm guest: running again after: paused") {
		t.Errorf("console lines: %q", notes)
	}
}

// TestManagerWindows11Machine starts the Windows 11 machine model — OVMF
// Secure Boot code, a per-VM Microsoft-keys variable store, swtpm over its
// socket, install media as a CD-ROM — under real QEMU with TCG, and stops
// it. No Windows: the machine reaches the firmware and QMP answers.
func TestManagerWindows11Machine(t *testing.T) {
	testenv.NeedE2E(t) // real QEMU: the full suite's
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "qemu-img")
	testenv.NeedTool(t, "swtpm")
	testenv.NeedFile(t, vm.OVMFSecureCode, "apt-get install ovmf")
	iso := filepath.Join(t.TempDir(), "install.iso")
	if err := os.WriteFile(iso, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	drivers := filepath.Join(t.TempDir(), "virtio-win.iso")
	if err := os.WriteFile(drivers, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := config.VM{Name: "windows", OS: "windows11", MemoryBytes: 1 << 30, CPUs: 2, Firmware: "uefi-secureboot",
		TPM: true, DiskSize: 1 << 30, DiskFormat: "qcow2", InstallMedia: iso, Drivers: drivers, Display: "none", Network: "user",
		ShutdownTimeout: 2, Windows: &config.Windows{Language: "en-US", Locale: "en-US", Keyboard: "en-US", TimeZone: "UTC",
			Account: "anna", ComputerName: "WINDOWS", Image: "Windows 11 Pro"}}
	var s sink
	m := newManager(t, &s, spec)
	hostCfg := &config.Config{APIPort: 8484, FileServer: &config.FileServer{User: "thin", Shares: []config.Share{{Name: "files", Path: "files", Drive: "Z"}}}}
	m.Helper = func(g guestdrive.Guest) (map[string]string, error) {
		return guestdrive.Files(guestdrive.Input{Config: hostCfg, Guest: g, Ctl: "MZ thinhost.exe"})
	}
	defer m.StopAll()
	ctx := context.Background()
	if err := m.Start(ctx, "windows"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := m.Status()[0]
		if st.State == "running" && st.Install {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v; output:\n%s", st, s.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// QEMU must stay up: a bad option or a missing swtpm ends it at once.
	time.Sleep(3 * time.Second)
	if st := m.Status()[0]; st.State != "running" || st.Restarts != 0 {
		t.Fatalf("QEMU did not stay up: %+v; output:\n%s", st, s.String())
	}
	qmp := filepath.Join(m.RunDir, "windows", "qmp.sock")
	helper := filepath.Join(m.StateDir, "windows", "helper.iso")
	// In install mode the THINHOST CD carries the answer file, with the
	// setup password ctl shows; always thinhost.exe with the guest's own
	// token, which the manager knows as the guest's.
	if names := isoNames(t, helper); !slices.Contains(names, guestdrive.AnswerFile) || !slices.Contains(names, guestdrive.SetupScript) ||
		!slices.Contains(names, guestdrive.CtlProgram) || !slices.Contains(names, api.GuestConfigFile) {
		t.Errorf("the install THINHOST CD holds %q", names)
	}
	var gc api.GuestConfig
	if err := json.Unmarshal(isoFile(t, helper, api.GuestConfigFile), &gc); err != nil {
		t.Fatal(err)
	}
	if owner, ok := m.TokenOwner(gc.Token); !ok || owner != "windows" || gc.Addr != "10.0.2.2:8484" {
		t.Errorf("the drive's %s = %+v: its token is %q's (%v)", api.GuestConfigFile, gc, owner, ok)
	}
	if msg, err := m.Do(ctx, "windows", "setup-password"); err != nil || !strings.Contains(msg, "account anna, one-time setup password ") {
		t.Errorf("setup-password: %q %v", msg, err)
	}
	cds := queryCDs(t, qmp)
	for _, id := range []string{vm.InstallCD, vm.DriversCD, vm.HelperCD} {
		if cd, ok := cds[id]; !ok || cd.TrayOpen || cd.File == "" {
			t.Errorf("CD %s at the start: %+v (all: %+v)", id, cd, cds)
		}
	}
	if cds[vm.HelperCD].File != helper {
		t.Errorf("the THINHOST CD is %q, want %s", cds[vm.HelperCD].File, helper)
	}
	// install-off on the running guest takes the installer's CD out at
	// once (the drivers' CD stays), and puts in a THINHOST CD without the
	// answer file, as QEMU itself reports.
	if err := m.SetInstall("windows", false); err != nil {
		t.Fatalf("install-off: %v", err)
	}
	cds = queryCDs(t, qmp)
	if cd := cds[vm.InstallCD]; !cd.TrayOpen || cd.File != "" {
		t.Errorf("the install CD is still in: %+v", cd)
	}
	if cd := cds[vm.DriversCD]; cd.TrayOpen || cd.File != drivers {
		t.Errorf("the drivers CD is out: %+v", cd)
	}
	if cd := cds[vm.HelperCD]; cd.TrayOpen || cd.File != helper {
		t.Errorf("the THINHOST CD after install mode: %+v", cd)
	}
	if names := isoNames(t, helper); slices.Contains(names, guestdrive.AnswerFile) || !slices.Contains(names, guestdrive.MapDrives) {
		t.Errorf("the THINHOST CD after install mode holds %q", names)
	}
	// A crash (QEMU killed) is restarted by the supervisor.
	if err := syscall.Kill(m.Status()[0].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for st := m.Status()[0]; st.Restarts < 1 || st.State != "running"; st = m.Status()[0] {
		if time.Now().After(deadline) {
			t.Fatalf("QEMU not restarted after a crash: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := m.Stop("windows"); err != nil {
		t.Fatal(err)
	}
	if st := m.Status()[0]; st.State != "stopped" {
		t.Errorf("status after stop = %+v", st)
	}
	for _, f := range []string{"OVMF_VARS.fd", "disk.qcow2", "tpm"} {
		if _, err := os.Stat(filepath.Join(m.StateDir, "windows", f)); err != nil {
			t.Errorf("state file: %v", err)
		}
	}

	// The firmware alone ignores the power button: QEMU was stopped
	// after the shutdown timeout, so a snapshot is refused unless forced.
	if err := m.Snapshot(ctx, "windows", false); !errors.Is(err, vm.ErrUnclean) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("snapshot of a guest stopped uncleanly: %v", err)
	}
	// Reset brings back the UEFI variables and the TPM state of the
	// snapshot with its disk.
	if err := m.Snapshot(ctx, "windows", true); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(m.StateDir, "windows")
	vars, err := os.ReadFile(filepath.Join(dir, "OVMF_VARS.fd"))
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, len(vars))
	for i := range junk {
		junk[i] = 0x5a
	}
	if err := os.WriteFile(filepath.Join(dir, "OVMF_VARS.fd"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tpm", "written-after-the-snapshot"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(ctx, "windows"); err != nil {
		t.Fatal(err)
	}
	defer m.Stop("windows")
	if got, _ := os.ReadFile(filepath.Join(dir, "OVMF_VARS.fd")); bytes.Equal(got, junk) || len(got) != len(vars) {
		t.Error("reset did not restore the UEFI variables of the snapshot")
	}
	if _, err := os.Stat(filepath.Join(dir, "tpm", "written-after-the-snapshot")); !os.IsNotExist(err) {
		t.Errorf("reset did not restore the TPM state of the snapshot: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tpm")); len(entries) == 0 {
		t.Error("the TPM state is empty after reset")
	}
}

type cdState struct {
	TrayOpen bool
	File     string
}

// queryCDs reads the CD drives of a running QEMU by device id: whether
// the tray is open and the file of the medium in it.
func queryCDs(t *testing.T, sock string) map[string]cdState {
	t.Helper()
	raw, err := qmpc.Run(sock, "query-block", nil)
	if err != nil {
		t.Fatal(err)
	}
	var blocks struct {
		Return []struct {
			Qdev     string `json:"qdev"`
			TrayOpen bool   `json:"tray_open"`
			Inserted *struct {
				File string `json:"file"`
			} `json:"inserted"`
		} `json:"return"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	out := map[string]cdState{}
	for _, b := range blocks.Return {
		id := b.Qdev[strings.LastIndex(b.Qdev, "/")+1:]
		cd := cdState{TrayOpen: b.TrayOpen}
		if b.Inserted != nil {
			cd.File = b.Inserted.File
		}
		out[id] = cd
	}
	return out
}

// openISO reads an ISO image (closed when the test ends).
func openISO(t *testing.T, path string) filesystem.FileSystem {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := iso9660.Read(file.New(f, true), fi.Size(), 0, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// isoNames lists the files at the root of an ISO image.
func isoNames(t *testing.T, path string) []string {
	t.Helper()
	entries, err := openISO(t, path).ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// isoFile reads a file at the root of an ISO image.
func isoFile(t *testing.T, path, name string) []byte {
	t.Helper()
	r, err := openISO(t, path).OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		t.Fatalf("open %s on %s: %v", name, path, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSnapshotMergeBusy: a snapshot that merges a large overlay into its
// base lets the manager's lock go while qemu-img runs (slowed down here):
// the status shows the merge and its progress, another guest's snapshot
// goes through meanwhile, this guest's reset is refused as busy, and the
// merged base holds what the overlay held.
func TestSnapshotMergeBusy(t *testing.T) {
	qemuImg := testenv.NeedTool(t, "qemu-img")
	qemuIO := testenv.NeedTool(t, "qemu-io")
	spec := func(name string) config.VM {
		return config.VM{Name: name, OS: "linux", MemoryBytes: 256 << 20, CPUs: 1, Firmware: "bios",
			DiskSize: 64 << 20, DiskFormat: "qcow2", Display: "none", Network: "none", ShutdownTimeout: 5}
	}
	var s sink
	m := newManager(t, &s, spec("a"), spec("b"))
	// qemu-img as the manager runs it: a commit says 50% and takes a
	// second more before it starts.
	wrapper := filepath.Join(t.TempDir(), "qemu-img")
	script := "#!/bin/sh\nif [ \"$1\" = commit ]; then printf '    (0.00/100%%)\\r    (50.00/100%%)\\r'; sleep 1; fi\nexec " + qemuImg + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m.Program = func(p string, a ...string) (string, []string) {
		if p == "/usr/bin/qemu-img" {
			return wrapper, a
		}
		return p, a
	}
	ctx := context.Background()
	if err := m.Snapshot(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(m.StateDir, "a", "overlay.qcow2")
	if out, err := exec.Command(qemuIO, "-c", "write -P 0x5a 0 8M", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v: %s", err, out)
	}
	done := make(chan error, 1)
	go func() { done <- m.Snapshot(ctx, "a", false) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(m.Status()[0].Busy, "merging the overlay into the base, 50%") {
		if time.Now().After(deadline) {
			t.Fatalf("status during the merge: %+v", m.Status()[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// b's first snapshot has no overlay to merge: it needs the lock only.
	if err := m.Snapshot(ctx, "b", false); err != nil {
		t.Errorf("another guest's snapshot during the merge: %v", err)
	}
	if err := m.Reset(ctx, "a"); !errors.Is(err, vm.ErrBusy) {
		t.Errorf("a reset during the merge: %v, want ErrBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := m.Status()[0]; st.Busy != "" {
		t.Errorf("busy after the merge: %q", st.Busy)
	}
	base := filepath.Join(m.StateDir, "a", "disk.qcow2")
	if out, err := exec.Command(qemuIO, "-r", "-c", "read -P 0x5a 0 8M", base).CombinedOutput(); err != nil || strings.Contains(string(out), "Pattern verification failed") {
		t.Errorf("the base after the merge: %v: %s", err, out)
	}
}
