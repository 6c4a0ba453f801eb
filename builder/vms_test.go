package builder

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/images/ovmfvars"
	"github.com/thinhost/thinhost/profiles"
)

// TestVMSpecs: the profile's guests become hostd's config, files carried
// in the image get their paths there, ISOs their media partitions.
func TestVMSpecs(t *testing.T) {
	p, diags := profiles.Parse("../profiles/testdata/vms.hcl", profiles.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	specs := VMSpecs(p)
	if len(specs) != 3 {
		t.Fatalf("specs = %+v", specs)
	}
	w, l, tiny := specs[0], specs[1], specs[2]
	if w.InstallMedia != "/dev/disk/by-partlabel/thinhost-windows-install" || w.Drivers != "/dev/disk/by-partlabel/thinhost-windows-drivers" ||
		w.MemoryPercent != 75 || w.MemoryBytes != 0 || !w.CPUsAll || w.CPUsAllBut != 1 || w.ShutdownTimeout != 120 ||
		!strings.HasPrefix(w.MAC, "52:54:00:") || strings.Join(w.USB, ",") != "046d:c52b,8087:0a2b" || w.VNC != "" {
		t.Errorf("windows = %+v", w)
	}
	if l.VNC != "0.0.0.0:5901" || l.DiskFormat != "raw" || l.Autostart || l.ShutdownTimeout != 180 {
		t.Errorf("legacy = %+v", l)
	}
	if tiny.Kernel != "/system/vms/tiny/kernel" || tiny.Initrd != "" || tiny.Cmdline != "console=ttyS0" || tiny.Firmware != "bios" {
		t.Errorf("tiny = %+v", tiny)
	}
	if FileServerSpec(p) != nil {
		t.Error("a file server without shares")
	}
}

func TestNeedHostFiles(t *testing.T) {
	err := needHostFiles([]HostFile{{Src: "/nonexistent/usr/sbin/smbd", Package: "samba"}}, "the profile's shares")
	if err == nil || !strings.Contains(err.Error(), "apt-get install samba") || !strings.Contains(err.Error(), "the profile's shares") {
		t.Errorf("err = %v", err)
	}
}

// TestNTHash against the NT hash Samba's own tools and the literature
// give for "password" (MS-NLMP's example password is "Password").
func TestNTHash(t *testing.T) {
	for pw, want := range map[string]string{
		"password": "8846F7EAEE8FB117AD06BDD830B7586C",
		"Password": "A4F49C406510BDCAB6824EE7C30FD852",
		"":         "",
	} {
		if got := config.NTHash(pw); got != want {
			t.Errorf("NTHash(%q) = %s, want %s", pw, got, want)
		}
	}
}

// TestIsMultiboot: a header QEMU's loader takes, 4-byte aligned in the
// first 8 KiB with a checksum that sums to zero, and the near misses.
func TestIsMultiboot(t *testing.T) {
	header := func(off int, flags, sum uint32) []byte {
		b := make([]byte, 8192)
		binary.LittleEndian.PutUint32(b[off:], 0x1BADB002)
		binary.LittleEndian.PutUint32(b[off+4:], flags)
		binary.LittleEndian.PutUint32(b[off+8:], sum)
		return b
	}
	magic := uint32(0x1BADB002)
	ok := -(magic + 3)
	for _, c := range []struct {
		name string
		head []byte
		want bool
	}{
		{"at the start", header(0, 3, ok), true},
		{"at 4 KiB", header(4096, 3, ok), true},
		{"last place in 8 KiB", header(8192-12, 3, ok), true},
		{"bad checksum", header(0, 3, ok+1), false},
		{"unaligned", header(2, 3, ok), false},
		{"truncated", header(0, 3, ok)[:8], false},
		{"a bzImage's head", make([]byte, 8192), false},
	} {
		if got := isMultiboot(c.head); got != c.want {
			t.Errorf("%s: isMultiboot = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSDLFilesMesa: one list of the panel's files serves bookworm's Mesa 22
// (a file per DRI driver, no GBM backend) and backports' Mesa 25 (DRI
// links to one loader, and gbm/dri_gbm.so, which must ship: without it
// GBM finds no backend and the panel stays black).
func TestSDLFilesMesa(t *testing.T) {
	tree := func(mesa25 bool) *archive.Tree {
		files := map[string]string{}
		for _, f := range SDLFiles {
			switch {
			case f.Optional:
			case mesa25 && strings.HasPrefix(f.Src, layout.DRIDir+"/"):
				files[f.Src] = "->libdril_dri.so"
			default:
				files[f.Src] = "file"
			}
		}
		if mesa25 {
			files[layout.DRIDir+"/libdril_dri.so"] = "loader"
			files[layout.GBMBackendDir+"/dri_gbm.so"] = "backend"
		}
		tr, err := archive.NewTree([]archive.TreePart{fakePart(t, "mesa", files)})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	for _, mesa25 := range []bool{false, true} {
		files, err := systemFilesFromPackages(&hostPackages{Tree: tree(mesa25)}, SDLFiles, nil, nil)
		if err != nil {
			t.Fatalf("mesa 25 %v: %v", mesa25, err)
		}
		gbm, iris := false, ""
		for _, f := range files {
			switch f.Dst {
			case layout.GBMBackendDir + "/dri_gbm.so":
				gbm = true
			case layout.DRIDir + "/iris_dri.so":
				iris = filepath.Base(f.Src)
			}
		}
		if gbm != mesa25 {
			t.Errorf("mesa 25 %v: GBM backend shipped %v", mesa25, gbm)
		}
		if want := map[bool]string{false: "iris_dri.so", true: "libdril_dri.so"}[mesa25]; iris != want {
			t.Errorf("mesa 25 %v: iris_dri.so is %q, want the bytes of %s", mesa25, iris, want)
		}
	}
	// On the build machine (no packages block) an optional file that is
	// not there is no error.
	if err := needHostFiles([]HostFile{{Src: "/nonexistent/dri_gbm.so", Optional: true}}, "test"); err != nil {
		t.Errorf("optional file missing: %v", err)
	}
}

// TestMicrosoft2023Vars: beside the ovmf package's store with Microsoft's
// keys, the system image gets a copy with the 2023 certificates, from the
// cache under its hash (the same path and bytes in every build).
func TestMicrosoft2023Vars(t *testing.T) {
	if _, err := os.Stat(layout.OVMFMSVars); err != nil {
		t.Skip("no ovmf package here (apt-get install ovmf)")
	}
	cache := t.TempDir()
	in := []images.SystemFile{{Src: "/usr/bin/true", Dst: "/usr/bin/true"}, {Src: layout.OVMFMSVars, Package: "ovmf", Version: "2022.11-6"}}
	out, err := withMicrosoft2023Vars(in, cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[2].Dst != layout.OVMFMSVars2023 || out[2].Version != "2022.11-6+thinhost-microsoft-2023" || !strings.HasPrefix(out[2].Src, cache) {
		t.Fatalf("system files: %+v", out)
	}
	raw, err := os.ReadFile(out[2].Src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ovmfvars.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := s.Certificates("db", ovmfvars.ImageSecurityDatabase)
	if err != nil || len(certs) != 4 {
		t.Errorf("db: %d certificates, %v", len(certs), err)
	}
	again, err := withMicrosoft2023Vars(in, cache)
	if err != nil || again[2].Src != out[2].Src {
		t.Errorf("a second build: %+v %v", again, err)
	}
	if none, _ := withMicrosoft2023Vars(in[:1], cache); len(none) != 1 {
		t.Errorf("without ovmf's store: %+v", none)
	}
}
