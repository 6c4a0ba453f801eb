package vm

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/internal/testenv"

	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/images/qemu"
)

var (
	laptop = Host{KVM: true, CPUVendor: "GenuineIntel", MemBytes: 16 << 30, CPUs: 8, Root: "/system"}
	paths  = func(name string) Paths { return Paths{Dir: "/data/vms/" + name, RunDir: "/run/vms/" + name} }
)

func windows11() *config.VM {
	return &config.VM{Name: "windows", OS: "windows11", MemoryPercent: 75, CPUsAll: true, CPUsAllBut: 1,
		Firmware: "uefi-secureboot", TPM: true, DiskSize: 128 << 30, DiskFormat: "qcow2",
		InstallMedia: "/dev/disk/by-partlabel/thinhost-windows-install", Drivers: "/dev/disk/by-partlabel/thinhost-windows-drivers",
		Display: "sdl", USB: []string{"046d:c52b"}, Network: "user", Autostart: true, ShutdownTimeout: 120}
}

// TestArgsGolden compares the QEMU command line for each spec with its
// golden file, one argument per line.
func TestArgsGolden(t *testing.T) {
	tcg := laptop
	tcg.KVM = false
	amd := laptop
	amd.CPUVendor = "AuthenticAMD"
	win10 := &config.VM{Name: "legacy", OS: "windows10", MemoryBytes: 6 << 30, CPUs: 4, Firmware: "uefi",
		DiskSize: 80 << 30, DiskFormat: "raw", Display: "vnc", VNC: "0.0.0.0:5901", Network: "user", ShutdownTimeout: 180}
	linux := &config.VM{Name: "guest", OS: "linux", MemoryBytes: 256 << 20, CPUs: 1, Firmware: "bios",
		DiskSize: 16 << 20, DiskFormat: "qcow2", Kernel: "/system/vms/guest/kernel", Initrd: "/system/vms/guest/initrd",
		Cmdline: "console=ttyS0 quiet", Display: "none", Network: "user", Autostart: true, ShutdownTimeout: 30}
	noDrivers := windows11()
	noDrivers.Drivers = ""
	noDrivers.Nested = true
	panel := laptop
	panel.Panel, panel.Sound, panel.Vhost = "1920x1200", "plughw:0", true
	for _, c := range []struct {
		name string
		spec *config.VM
		host Host
		st   State
	}{
		{"windows11-install", windows11(), laptop, State{Install: true, HelperISO: "/run/vms/windows/helper.iso", Tap: "thvm0"}},
		{"windows11-snapshot-amd", windows11(), amd, State{Overlay: true}},
		{"windows10-vnc", win10, laptop, State{}},
		{"linux", linux, laptop, State{}},
		{"windows11-tcg", windows11(), tcg, State{}},
		{"linux-tcg", linux, tcg, State{Overlay: true}},
		// No virtio drivers: a SATA disk and an e1000e, which setup
		// drives by itself; the panel's mode and the sound card.
		{"windows11-nodrivers", noDrivers, panel, State{Install: true, DiskBus: "sata", HelperISO: "/run/vms/windows/helper.iso", Tap: "thvm1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(Args(c.spec, c.host, paths(c.spec.Name), c.st), "\n") + "\n"
			testenv.Golden(t, filepath.Join("testdata", c.name+".golden"), got)
		})
	}
}

// TestArgsWindows11 checks what Windows 11 needs, independently of the
// golden file's exact order.
func TestArgsWindows11(t *testing.T) {
	argv := " " + strings.Join(Args(windows11(), laptop, paths("windows"), State{Install: true}), " ") + " "
	for _, want := range []string{
		" -machine q35,smm=on,hpet=off ",
		" -global driver=cfi.pflash01,property=secure,value=on ",
		"readonly=on,file=/system/usr/share/OVMF/OVMF_CODE_4M.secboot.fd ",
		"unit=1,file=/data/vms/windows/OVMF_VARS.fd ",
		" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 ",
		"discard=unmap,detect-zeroes=unmap",
		" -device virtio-blk-pci,drive=disk0,iothread=iothread0,bootindex=1 ",
		"cache=none,aio=native",
		"virtio-net-pci,netdev=net0",
		",invtsc=on,vmx=off ", " -device virtio-vga ", " -device pvpanic ",
		" -device ich9-intel-hda,id=sound0 -device hda-duplex,bus=sound0.0,audiodev=snd0 ",
		"name=org.qemu.guest_agent.0",
		"usb-tablet", "virtio-rng-pci", "base=localtime",
		" -global ICH9-LPC.disable_s3=1 ", "hv_relaxed", " -accel kvm ",
		"media=cdrom,readonly=on,format=raw,file=/dev/disk/by-partlabel/thinhost-windows-install",
		" -smp 7,", " -m 12288M ",
	} {
		if !strings.Contains(argv, want) {
			t.Errorf("windows 11 argv lacks %q:\n%s", want, argv)
		}
	}
	noInstall := strings.Join(Args(windows11(), laptop, paths("windows"), State{}), " ")
	if strings.Contains(noInstall, "cdrom") {
		t.Errorf("install media attached outside install mode: %s", noInstall)
	}
	for _, bad := range []string{"balloon", "hv_evmcs", "vmx=on"} {
		if strings.Contains(argv, bad) {
			t.Errorf("windows 11 argv has %q:\n%s", bad, argv)
		}
	}
	spec := windows11()
	spec.NoSound = true
	if a := strings.Join(Args(spec, laptop, paths("windows"), State{}), " "); strings.Contains(a, "audiodev") || strings.Contains(a, "hda") {
		t.Errorf("sound = false, yet: %s", a)
	}
}

func TestSize(t *testing.T) {
	small := Host{MemBytes: 2 << 30, CPUs: 2}
	r := Size(&config.VM{MemoryPercent: 100, CPUsAll: true, CPUsAllBut: 4}, small)
	if r.MemMiB != (2<<30-HostReserve)>>20 || r.CPUs != 1 || len(r.Notes) != 1 {
		t.Errorf("Size = %+v", r)
	}
	r = Size(&config.VM{MemoryBytes: 1 << 30, CPUs: 16}, small)
	if r.MemMiB != 1024 || r.CPUs != 2 || len(r.Notes) != 1 {
		t.Errorf("Size = %+v", r)
	}
}

func TestMAC(t *testing.T) {
	if a, b := layout.GuestMAC("windows"), layout.GuestMAC("windows"); a != b || !strings.HasPrefix(a, "52:54:00:") || len(a) != 17 {
		t.Errorf("MAC = %q, %q", a, b)
	}
	if layout.GuestMAC("a") == layout.GuestMAC("b") {
		t.Error("MAC collides for a and b")
	}
}

// TestInstallWatch: install mode ends once the guest has read a boot's
// worth from its disk since it last read the installer.
func TestInstallWatch(t *testing.T) {
	var w InstallWatch
	const M = 1 << 20
	for i, c := range []struct {
		disk, cd int64
		want     bool
	}{
		{0, 1 * M, false},                  // first sample: a baseline
		{50 * M, 300 * M, false},           // setup runs from the ISO
		{900 * M, 2000 * M, false},         // setup copies to the disk
		{1100 * M, 2000 * M, false},        // no installer reads: 200 MiB since...
		{1150 * M, 2000 * M, false},        // ...250 MiB: not yet
		{1150 * M, 2000*M + 64<<10, false}, // a reset: the firmware probes the CD
		{1300 * M, 2000*M + 64<<10, false}, // Windows boots from its disk
		{1450 * M, 2000*M + 64<<10, true},  // 300 MiB from disk, nothing from the CD
	} {
		if got := w.Observe(map[string]int64{"disk0": c.disk, "cd0": c.cd}); got != c.want {
			t.Errorf("sample %d (disk %d MiB, cd %d): %v, want %v", i, c.disk/M, c.cd, got, c.want)
		}
	}
}

// FuzzArgs: whatever paths and names a guest's configuration holds, each
// option list in QEMU's argv has the keys hostd writes (compared with the
// same guest on plain values): no value adds an option or an argument.
var vmNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

func FuzzArgs(f *testing.F) {
	f.Add("windows", "/dev/disk/by-partlabel/x", "/system/vms/k", "/data/vms", "vnc-pw1")
	f.Add("w,id=x", "/a,readonly=off", "k,,if=none", "/d,file=/etc/shadow", "pw,ab")
	// The last value was a VNC password, which the image no longer
	// carries (hostd makes it); the corpus keeps its shape.
	f.Fuzz(func(t *testing.T, name, media, kernel, dir, _ string) {
		// The name is a profile's VM name and the directories absolute
		// (hostd's own, under /data and /run); paths are anything.
		if !vmNameRE.MatchString(name) || media == "" || kernel == "" || !strings.HasPrefix(dir, "/") {
			return
		}
		mk := func(name, media, kernel, dir string) []string {
			spec := windows11()
			spec.Name, spec.InstallMedia, spec.Drivers = name, media, media
			// Beyond loopback: the password's file is in the guest's
			// directory, a path in an option list.
			spec.Display, spec.VNC = "vnc", "0.0.0.0:5901"
			linux := &config.VM{Name: name, OS: "linux", MemoryBytes: 256 << 20, CPUs: 1, Firmware: "bios",
				DiskSize: 16 << 20, DiskFormat: "qcow2", Kernel: kernel, Initrd: kernel, Cmdline: "console=ttyS0", Display: "none", Network: "user"}
			p := Paths{Dir: dir + "/" + name, RunDir: dir + "/run/" + name}
			return append(Args(spec, laptop, p, State{Install: true, Overlay: true, HelperISO: dir}), Args(linux, laptop, p, State{})...)
		}
		got, want := mk(name, media, kernel, dir), mk("n", "/m", "/k", "/d")
		if len(got) != len(want) {
			t.Fatalf("%d arguments, %d for plain values:\n%q", len(got), len(want), got)
		}
		for i := range got {
			// The values of -kernel, -initrd, -append and -L are plain
			// strings to QEMU, not option lists.
			if i > 0 && (want[i-1] == "-kernel" || want[i-1] == "-initrd" || want[i-1] == "-append" || want[i-1] == "-L") {
				continue
			}
			if gk, wk := optKeys(got[i]), optKeys(want[i]); gk != wk {
				t.Fatalf("argument %d is %q: keys %q, want %q", i, got[i], gk, wk)
			}
		}
	})
}

// optKeys is the keys of a QEMU option list, as QEMU reads them.
func optKeys(arg string) string {
	keys, _ := qemu.SplitOpts(arg)
	return strings.Join(keys, ",")
}

// TestAllowedUSB: the host's boot stick is never passed to a guest, the
// other devices are.
func TestAllowedUSB(t *testing.T) {
	m := &Manager{Log: slog.New(slog.DiscardHandler), Protected: func() []string { return []string{"0781:5581"} }}
	got := m.allowedUSB("windows", []string{"046d:c52b", "0781:5581", "0781:5581"})
	if strings.Join(got, ",") != "046d:c52b" {
		t.Errorf("allowedUSB = %v, want the boot stick left out", got)
	}
	if got := (&Manager{}).allowedUSB("w", []string{"0781:5581"}); len(got) != 1 {
		t.Errorf("without Protected: %v", got)
	}
}

// TestVNCPassword: a display beyond loopback gets a password of 8
// characters made at first, kept 0600 in the guest's directory and the
// same until renewed; a loopback display and a guest without VNC have
// none to show.
func TestVNCPassword(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(&Manager{Log: slog.New(slog.DiscardHandler), Sup: supervise.New(slog.New(slog.DiscardHandler), nil),
		StateDir: dir, RunDir: filepath.Join(dir, "run")}, []config.VM{
		{Name: "lan", Display: "vnc", VNC: "0.0.0.0:5901"},
		{Name: "local", Display: "vnc", VNC: "127.0.0.1:5902"},
		{Name: "none", Display: "none"},
	})
	msg, err := m.Do(context.Background(), "lan", "vnc-password")
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := strings.CutPrefix(msg, "vnc 0.0.0.0:5901 password ")
	if !ok || len(pw) != 8 {
		t.Fatalf("message %q: want the address and a password of 8 characters", msg)
	}
	fi, err := os.Stat(filepath.Join(dir, "lan", "vnc-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the password's file: %v, %v; want 0600", fi, err)
	}
	if again, _ := m.Do(context.Background(), "lan", "vnc-password"); again != msg {
		t.Errorf("asked again: %q, want %q", again, msg)
	}
	renewed, err := m.Do(context.Background(), "lan", "new-vnc-password")
	if err != nil || renewed == msg || !strings.HasPrefix(renewed, "vnc 0.0.0.0:5901 password ") {
		t.Errorf("renewed: %q, %v; want a new password", renewed, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lan", "vnc-password")); !strings.HasSuffix(renewed, " "+string(b)) {
		t.Errorf("the file holds %q, the message says %q", b, renewed)
	}
	for _, name := range []string{"local", "none"} {
		if msg, err := m.Do(context.Background(), name, "vnc-password"); err == nil {
			t.Errorf("%s: %q, want an error (no password to show)", name, msg)
		}
	}
	if !VNCPassworded("[::]:5900") || !VNCPassworded("nonsense") || VNCPassworded("[::1]:5900") {
		t.Error("VNCPassworded: beyond loopback and unparsable addresses take a password, loopback none")
	}
}

// TestAPIToken: each Windows guest's own token is made once, kept 0600
// beside its disk, the same at the next start, and names its guest
// alone; a guest whose drive was never written has none.
func TestAPIToken(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(&Manager{Log: slog.New(slog.DiscardHandler), Sup: supervise.New(slog.New(slog.DiscardHandler), nil),
		StateDir: dir, RunDir: filepath.Join(dir, "run")}, []config.VM{{Name: "windows", OS: "windows11"}, {Name: "work", OS: "windows11"}})
	tok := map[string]string{}
	for _, name := range []string{"windows", "work"} {
		g, _ := m.find(name)
		os.MkdirAll(g.paths.Dir, 0o755)
		a, err := m.apiToken(g)
		if err != nil || len(a) != 26 {
			t.Fatalf("token of %s: %q, %v", name, a, err)
		}
		if b, _ := m.apiToken(g); b != a {
			t.Errorf("%s's token changed: %q then %q", name, a, b)
		}
		if fi, err := os.Stat(g.paths.APIToken()); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the token's file: %v, %v; want 0600", fi, err)
		}
		tok[name] = a
	}
	if tok["windows"] == tok["work"] {
		t.Error("two guests, one token")
	}
	for name, a := range tok {
		if owner, ok := m.TokenOwner(a); !ok || owner != name {
			t.Errorf("TokenOwner(%s's token) = %q, %v", name, owner, ok)
		}
	}
	for _, bad := range []string{"", tok["windows"][:25], tok["windows"] + "x", strings.ToLower(tok["work"])} {
		if owner, ok := m.TokenOwner(bad); ok {
			t.Errorf("TokenOwner(%q) = %q", bad, owner)
		}
	}
	// A new manager (the next boot) knows a token once the drive is
	// written again, with the same token.
	m2 := NewManager(&Manager{Log: slog.New(slog.DiscardHandler), Sup: supervise.New(slog.New(slog.DiscardHandler), nil),
		StateDir: dir, RunDir: filepath.Join(dir, "run")}, []config.VM{{Name: "windows", OS: "windows11"}})
	if _, ok := m2.TokenOwner(tok["windows"]); ok {
		t.Error("a token known before its guest's drive was written")
	}
	g, _ := m2.find("windows")
	if a, _ := m2.apiToken(g); a != tok["windows"] {
		t.Errorf("the token changed across boots")
	}
}
