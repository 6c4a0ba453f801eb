package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestLaptopBuild builds examples/laptop.hcl as it is (Windows' ISOs
// stand-ins of a MiB) from Debian's archive: bookworm-backports' kernel,
// the laptop driver set with the drivers that load firmware in the system
// image, only the firmware those drivers name (Intel graphics and Wi-Fi
// among it), and the CPU microcode as the first initrd of the loader
// entry. The manifest says all of it.
func TestLaptopBuild(t *testing.T) {
	testenv.NeedE2E(t)
	root := testenv.RepoRoot()
	lock := testCache(t)
	dir := t.TempDir()
	var vars []string
	for _, v := range []string{"windows_iso", "virtio_win_iso"} {
		iso := filepath.Join(dir, v+".iso")
		if err := os.WriteFile(iso, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		vars = append(vars, "-var", v+"="+iso)
	}
	img := filepath.Join(dir, "laptop.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "laptop.hcl"), "-o", img, "--lock", lock}, vars...)...)
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

	entry := string(imagetest.ReadESPFile(t, img, layout.EntryPath("a")))
	mc, main := strings.Index(entry, "initrd /"+layout.MicrocodePath("a")), strings.Index(entry, "initrd /"+layout.InitrdPath("a"))
	if mc < 0 || main < 0 || mc > main {
		t.Errorf("the loader entry must load the microcode first:\n%s", entry)
	}
	if !strings.Contains(entry, "firmware_class.path=/system/lib/firmware") {
		t.Errorf("the kernel is not told where the firmware is:\n%s", entry)
	}
}
