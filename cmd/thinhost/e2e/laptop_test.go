package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
)

// TestLaptop is the real-laptop issue's acceptance on the emulated
// laptop. It builds examples/laptop.hcl from Debian's archive with the
// test guest in place of Windows (-var test_guest; Windows' ISOs are
// stand-ins of a MiB): bookworm-backports' kernel, the laptop driver set
// with the drivers that load firmware in the system image, only the
// firmware those drivers name (Intel graphics and Wi-Fi among it), and the
// CPU microcode as the first initrd of the loader entry, backports' Mesa
// for the panel; the manifest says all of it. Then it boots the image as a USB stick on the emulated laptop
// (run --machine laptop): hostd is ready and healthy, the guest's screen
// fills the panel (the screenshot's pixels are the test guest's pattern),
// and keys typed on the laptop reach the guest, Enter and Ctrl+Alt+Del
// included, which start no host shell and do not restart the host.
func TestLaptop(t *testing.T) {
	testenv.NeedE2E(t)
	root := testenv.RepoRoot()
	dir := t.TempDir()
	profile := filepath.Join(root, "examples", "laptop.hcl")
	var isoVars []string
	for _, v := range []string{"windows_iso", "virtio_win_iso"} {
		iso := filepath.Join(dir, v+".iso")
		if err := os.WriteFile(iso, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		isoVars = append(isoVars, "-var", v+"="+iso)
	}
	img := filepath.Join(dir, "laptop.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", profile, "-o", img, "--lock", testCache(t)}, isoVars...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("build:\n%s", stdout)
	if strings.Contains(stderr, "modules without any of their firmware") {
		t.Errorf("laptop.hcl's firmware packages leave drivers without firmware:\n%s", stderr)
	}

	var m struct {
		Boot []struct {
			Path     string   `json:"path"`
			Size     int64    `json:"size"`
			Packages []string `json:"packages"`
		} `json:"boot"`
		Files []struct {
			Path    string `json:"path"`
			Package string `json:"package"`
		} `json:"files"`
	}
	b, err := os.ReadFile(img + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var kernelPkgs, microcodePkgs []string
	for _, e := range m.Boot {
		switch e.Path {
		case "/" + layout.KernelPath("a"):
			kernelPkgs = e.Packages
		case "/" + layout.MicrocodePath("a"):
			microcodePkgs = e.Packages
		}
	}
	if len(kernelPkgs) != 1 || !strings.Contains(kernelPkgs[0], "bpo12") {
		t.Errorf("the kernel is not bookworm-backports': %v", kernelPkgs)
	}
	if len(microcodePkgs) != 2 || !strings.HasPrefix(microcodePkgs[0], "amd64-microcode ") || !strings.HasPrefix(microcodePkgs[1], "intel-microcode ") {
		t.Errorf("the microcode initrd is not in the manifest with both vendors' packages: %v", microcodePkgs)
	}
	count := func(prefix, pkg string) int {
		n := 0
		for _, f := range m.Files {
			if strings.HasPrefix(f.Path, prefix) && (pkg == "" || f.Package == pkg) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct{ prefix, pkg string }{
		{"/lib/firmware/i915/", "firmware-intel-graphics"},
		{"/lib/firmware/iwlwifi-", "firmware-iwlwifi"},
		{"/lib/firmware/amdgpu/", "firmware-amd-graphics"},
		{"/lib/firmware/intel/sof", "firmware-sof-signed"},
		{"/lib/firmware/regulatory.db", "wireless-regdb"},
		// ALSA's use-case configurations: SoundWire laptops' speakers.
		{layout.ALSAUCMDir + "/sof-soundwire/", "alsa-ucm-conf"},
		// Backports' Mesa 25 for the panel: its drivers in libgallium,
		// and the GBM backend SDL's kmsdrm cannot draw without.
		// (at the path ld.so finds it: /lib before /usr/lib)
		{"/lib/x86_64-linux-gnu/libgallium-25.", "mesa-libgallium"},
		{layout.GBMBackendDir + "/dri_gbm.so", "libgbm1"},
		// thinhost for Windows, for the guest's THINHOST drive.
		{layout.GuestCtlPath, "thinhost"},
	} {
		if count(c.prefix, c.pkg) == 0 {
			t.Errorf("the manifest lists no %s* from %s", c.prefix, c.pkg)
		}
	}
	// Only what drivers name: Debian's firmware packages hold thousands
	// of files more (Mellanox, Netronome and Broadcom server NICs, ...).
	if n := count("/lib/firmware/", ""); n > 2000 || count("/lib/firmware/mellanox/", "")+count("/lib/firmware/netronome/", "") > 0 {
		t.Errorf("%d firmware files, including server NICs' the laptop set has no driver for", n)
	}
	// Drivers that load firmware are in the system image; storage and
	// USB are in the initramfs.
	var modules []string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "/lib/modules/") {
			modules = append(modules, filepath.Base(f.Path))
		}
	}
	for _, want := range []string{"i915.ko.xz", "xe.ko.xz", "amdgpu.ko.xz", "iwlwifi.ko.xz", "iwlmvm.ko.xz", "snd-hda-intel.ko.xz"} {
		if !slices.Contains(modules, want) {
			t.Errorf("the system image lacks %s", want)
		}
	}
	for _, early := range []string{"nvme.ko.xz", "xhci-pci.ko.xz", "usb-storage.ko.xz", "sd_mod.ko.xz"} {
		if slices.Contains(modules, early) {
			t.Errorf("%s is in the system image: it must be in the initramfs to find it", early)
		}
	}

	// A laptop profile boots the Secure Boot chain: shim, then GRUB,
	// whose configuration loads the microcode first.
	entry := string(imagetest.ReadESPFile(t, img, layout.GRUBConfigPath))
	mc, main := strings.Index(entry, "initrd /"+layout.MicrocodePath("a")+" /"), strings.Index(entry, " /"+layout.InitrdPath("a"))
	if mc < 0 || main < 0 || mc > main {
		t.Errorf("GRUB must load the microcode first:\n%s", entry)
	}
	if !strings.Contains(entry, "'firmware_class.path=/system/lib/firmware'") {
		t.Errorf("the kernel is not told where the firmware is:\n%s", entry)
	}
	if shim := imagetest.ReadESPFile(t, img, layout.BootloaderPath); !bytes.Contains(shim, []byte("UEFI SHIM")) {
		t.Errorf("%s is not shim", layout.BootloaderPath)
	}
	if t.Failed() {
		return
	}
	// The laptop, on bookworm's kernel (bookworm-backports' 6.12 panics
	// under TCG), with the bare test guest in place of Windows: a Linux
	// guest under TCG inside TCG takes minutes to boot, the bare one
	// seconds.
	lock := testCache(t)
	vars := []string{"kernel_package=linux-image-amd64"}
	guest := filepath.Join(dir, "bare-guest.elf")
	if err := testguest.BuildBare(context.Background(), root, guest); err != nil {
		t.Fatal(err)
	}
	os.Remove(img)
	// The panel's debug shell asks for this password; its letters are
	// typed nowhere else, so the guest's key log shows whether it saw it.
	const shellPass = "qwertyuiop"
	args := append([]string{"build", profile, "-o", img, "--lock", lock, "-var", vars[0], "-var", "test_guest=" + guest,
		"-var", "shell_password=" + shellPass}, isoVars...)
	if stdout, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("build with the test guest exited %d:\n%s\n%s", code, stdout, stderr)
	}
	// The guest has painted; then a, Enter and Ctrl+Alt+Del on the
	// laptop's keyboard, and the panel's picture.
	shot := filepath.Join(dir, "panel.png")
	// The data partition is encrypted (laptop.hcl's default): its new
	// passphrase is typed on the laptop's keyboard, at the prompt on the
	// panel, twice.
	const pass = "laptop passphrase"
	// A USB stick plugged into the laptop once the guest draws goes to
	// the guest (laptop.hcl's usb_hotplug), as hostd says and the guest
	// sees on its own USB controller, and is taken back when it is
	// pulled out.
	stick := filepath.Join(dir, "stick.img")
	if err := os.WriteFile(stick, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// Once the guest has Ctrl+Alt+Del, the host key combination turns
	// the panel to the host's console (its picture saved), where Enter
	// asks for the shell's password; once the shell runs, the
	// combination gives the panel back to the guest, whose screen shows
	// again.
	hostShot := filepath.Join(dir, "panel-host.png")
	stdout, stderr, code = runCLI(t, "run", img, "--machine", "laptop", "--check", "--snapshot", "-v",
		"--answer", "choose its passphrase: ="+pass, "--answer", "the same passphrase again: ="+pass,
		"--timeout", "10m", "--wait-for", "thinhost-guest: screen: painting", "--plug-usb", stick, "--usb-seen", "thinhost-guest: usb port ",
		"--send-keys", "a,ret,ctrl-alt-delete",
		"--press", "thinhost-guest: ctrl-alt-del=ctrl-alt-shift-f12", "--screenshot-at", "panel: the host's console="+hostShot,
		"--press", "panel: the host's console=ret", "--answer", "debug shell: password asked="+shellPass,
		"--press", "debug shell started=ctrl-alt-shift-f12", "--screenshot-at", "thinhost: panel: back to vm windows="+shot)
	t.Logf("run:\n%s", stdout)
	if code != 0 {
		t.Fatalf("run --machine laptop exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"thinhost: data /data on /dev/sd", "(encrypted)", "thinhost-guest: key 30", "thinhost-guest: key 28",
		"thinhost-guest: key 111", "thinhost-guest: ctrl-alt-del"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the console never showed %q", want)
		}
	}
	// The guest's sound device plays on the laptop's card: QEMU's ALSA
	// backend holds its playback device open (the kernel's
	// /proc/asound/.../status names QEMU's pid).
	// The driver starts the card muted: hostd unmutes it (the first
	// boot; later boots restore the mixer as the last one left it).
	for _, want := range []string{"thinhost: sound: guests play on card ", "thinhost: sound: vm windows holds plughw:CARD=", "thinhost: sound: mixer of "} {
		if !strings.Contains(stderr, want) && !strings.Contains(stdout, want) {
			t.Errorf("the console never showed %q", want)
		}
	}
	for _, want := range []string{"usb 46f4:0001 plugged in: given to vm windows (", `seen "thinhost-guest: usb port "`, "usb device unplugged: taken from vm windows"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the plugged-in stick: no %q", want)
		}
	}
	// Inside the guest: at its start one USB device, the tablet (never
	// the stick the host booted from); then a port has the plugged-in
	// stick, then not (the bare test guest reads the ports' connect
	// status).
	if !regexp.MustCompile(`thinhost-guest: usb: \d+ ports, devices on ports: \d+"`).MatchString(stderr) {
		t.Errorf("the guest did not start with the tablet alone on its USB controller")
	}
	if !regexp.MustCompile(`thinhost-guest: usb port \d+: device connected`).MatchString(stderr) ||
		!regexp.MustCompile(`thinhost-guest: usb port \d+: device disconnected`).MatchString(stderr) {
		t.Errorf("the guest did not see the stick come and go")
	}
	if strings.Contains(stderr, "reboot: Restarting") {
		t.Errorf("the keys reached the host: it restarted")
	}
	// One shell, started by the password typed on the host's console
	// after the combination, and ended by the combination back.
	if n := strings.Count(stderr, "debug shell started"); n != 1 {
		t.Errorf("the debug shell started %d times, want once (after the host key combination and the password)", n)
	}
	if !strings.Contains(stderr, "debug shell exited") {
		t.Errorf("the combination back to the guest did not end the panel's shell")
	}
	// The guest saw Enter once (before the combination), and neither
	// the combination's F12 (key 88) nor the password's letters (q is
	// key 16).
	if n := len(regexp.MustCompile(`thinhost-guest: key 28\b`).FindAllString(stderr, -1)); n != 1 {
		t.Errorf("the guest saw Enter %d times, want once: keys typed on the host's console reached it", n)
	}
	for _, never := range []string{"thinhost-guest: key 88", "thinhost-guest: key 16"} {
		if strings.Contains(stderr, never) {
			t.Errorf("the guest saw a key typed for the host: %q", never)
		}
	}
	if n := strings.Count(stderr, api.ReadyLine); n != 1 {
		t.Errorf("hostd was ready %d times: the host restarted", n)
	}
	keepArtifact(t, shot)
	keepArtifact(t, hostShot)
	checkPattern(t, shot)
	checkConsole(t, hostShot)
	if t.Failed() {
		t.Logf("console:\n%s", stderr)
	}
}

// checkPattern reads the panel's screenshot: the test guest's screen
// must fill it.
func checkPattern(t *testing.T, path string) {
	t.Helper()
	if err := testguest.PatternError(readPNG(t, path)); err != nil {
		t.Errorf("the panel: %v", err)
	}
}

// readPNG reads a screenshot.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("read the screenshot: %v", err)
	}
	return img
}

// checkConsole reads the panel's screenshot while the host's console has
// it: the kernel's console (light text on black), not the guest's
// pattern.
func checkConsole(t *testing.T, path string) {
	t.Helper()
	img := readPNG(t, path)
	if testguest.PatternError(img) == nil {
		t.Errorf("the host's console: the panel still shows the guest")
		return
	}
	b := img.Bounds()
	var dark, lit int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch l := (r + g + bl) / 3; {
			case l < 0x1000:
				dark++
			case l > 0x8000:
				lit++
			}
		}
	}
	// Text on black: mostly dark, some lit.
	if total := dark + lit; total == 0 || dark < total*3/4 || lit == 0 {
		t.Errorf("the host's console: %d dark and %d lit pixels sampled, want text on black", dark, lit)
	}
}

// keepArtifact copies a test's output file (a screenshot) into
// $THINHOST_TEST_ARTIFACTS, when set, for people to look at.
func keepArtifact(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("THINHOST_TEST_ARTIFACTS")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, t.Name()+"-"+filepath.Base(path)), b, 0o644)
	}
	if err != nil {
		t.Errorf("keep %s: %v", path, err)
	}
}
