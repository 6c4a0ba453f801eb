package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/initramfs"
)

// firmwareTree is a tree of unpacked firmware packages as Debian ships
// them: firmware-misc-nonfree under /lib/firmware, a newer package under
// /usr/lib/firmware, compressed files, a symbolic link, and the two
// microcode packages.
func firmwareTree(t *testing.T) *archive.Tree {
	t.Helper()
	var parts []archive.TreePart
	for pkg, files := range map[string]map[string]string{
		"firmware-misc-nonfree": {
			"lib/firmware/i915/tgl_dmc_ver2_12.bin": "dmc",
			"lib/firmware/i915/tgl_guc_70.bin":      "guc",
			"lib/firmware/i915/unused.bin":          "not named by a module",
		},
		"firmware-iwlwifi": {
			"usr/lib/firmware/iwlwifi-so-a0-gf-a0-86.ucode": "iwl",
			"usr/lib/firmware/iwlwifi-ty-a0-gf-a0.pnvm":     "link->",
			// Older firmware APIs than the driver's newest.
			"usr/lib/firmware/iwlwifi-gl-c0-fm-c0-83.ucode": "gl-83",
			"usr/lib/firmware/iwlwifi-gl-c0-fm-c0-86.ucode": "gl-86",
			"usr/lib/firmware/iwlwifi-gl-c0-fm-c0-99.ucode": "gl-99: newer than the driver",
		},
		"firmware-sof-signed": {
			"lib/firmware/intel/sof/community/sof-tgl.ri":      "sof",
			"lib/firmware/intel/sof-tplg/sof-hda-generic.tplg": "tplg",
		},
		"wireless-regdb": {
			"lib/firmware/regulatory.db-debian": "regdb",
		},
		"firmware-realtek": {
			"lib/firmware/rtw89/rtw8852b_fw-1.bin.xz": "rtw-1",
			"lib/firmware/rtw89/rtw8852b_fw-2.bin.xz": "rtw-2",
			"lib/firmware/rtl_nic/rtl8168h-2.fw":      "nic",
		},
		"intel-microcode": {
			"lib/firmware/intel-ucode/06-8c-01":           "INTEL-A",
			"lib/firmware/intel-ucode/06-9a-03":           "INTEL-B",
			"lib/firmware/intel-ucode/06-9a-03.initramfs": "not microcode",
		},
		"amd64-microcode": {
			"lib/firmware/amd-ucode/microcode_amd_fam19h.bin": "AMD-19",
			"lib/firmware/amd-ucode/README":                   "not microcode",
		},
	} {
		dir := t.TempDir()
		for p, content := range files {
			f := filepath.Join(dir, p)
			os.MkdirAll(filepath.Dir(f), 0o755)
			if content == "link->" {
				if err := os.Symlink("iwlwifi-so-a0-gf-a0-86.ucode", f); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		parts = append(parts, archive.TreePart{Package: &archive.Package{Name: pkg, Version: "1"}, Dir: dir})
	}
	tree, err := archive.NewTree(parts)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestFirmwareFiles(t *testing.T) {
	tree := firmwareTree(t)
	mods := &initramfs.ModuleSet{Modules: []*initramfs.Module{
		{Name: "i915", Firmware: []string{"i915/tgl_dmc_ver2_12.bin", "i915/tgl_guc_70.bin", "i915/adlp_dmc.bin"}},
		{Name: "iwlwifi", Firmware: []string{"iwlwifi-so-a0-gf-a0-86.ucode", "iwlwifi-ty-a0-gf-a0.pnvm", "iwlwifi-gl-c0-fm-c0-92.ucode"}},
		{Name: "cfg80211", Firmware: []string{"regulatory.db"}},
		// A glob, and files shipped compressed only.
		{Name: "rtw89_8852b", Firmware: []string{"rtw89/rtw8852b_fw*.bin"}},
		// Named twice: shipped once.
		{Name: "r8169", Firmware: []string{"rtl_nic/rtl8168h-2.fw"}},
		{Name: "r8169_again", Firmware: []string{"rtl_nic/rtl8168h-2.fw"}},
		{Name: "amdgpu", Firmware: []string{"amdgpu/green_sardine_dmcub.bin", "amdgpu/renoir_ta.bin"}},
		{Name: "ext4"},
		// Names no firmware, loads its directories'.
		{Name: "snd_sof_pci_intel_tgl"},
	}}
	rep := firmwareFiles(mods, tree)
	var got []string
	for _, f := range rep.Files {
		got = append(got, f.Src+" -> "+f.Dst)
	}
	want := []string{
		"/lib/firmware/i915/tgl_dmc_ver2_12.bin -> /lib/firmware/i915/tgl_dmc_ver2_12.bin",
		"/lib/firmware/i915/tgl_guc_70.bin -> /lib/firmware/i915/tgl_guc_70.bin",
		"/lib/firmware/intel/sof-tplg/sof-hda-generic.tplg -> /lib/firmware/intel/sof-tplg/sof-hda-generic.tplg",
		"/lib/firmware/intel/sof/community/sof-tgl.ri -> /lib/firmware/intel/sof/community/sof-tgl.ri",
		"/usr/lib/firmware/iwlwifi-gl-c0-fm-c0-86.ucode -> /lib/firmware/iwlwifi-gl-c0-fm-c0-86.ucode",
		"/usr/lib/firmware/iwlwifi-so-a0-gf-a0-86.ucode -> /lib/firmware/iwlwifi-so-a0-gf-a0-86.ucode",
		"/usr/lib/firmware/iwlwifi-ty-a0-gf-a0.pnvm -> /lib/firmware/iwlwifi-ty-a0-gf-a0.pnvm",
		"/lib/firmware/regulatory.db-debian -> /lib/firmware/regulatory.db",
		"/lib/firmware/rtl_nic/rtl8168h-2.fw -> /lib/firmware/rtl_nic/rtl8168h-2.fw",
		"/lib/firmware/rtw89/rtw8852b_fw-1.bin.xz -> /lib/firmware/rtw89/rtw8852b_fw-1.bin.xz",
		"/lib/firmware/rtw89/rtw8852b_fw-2.bin.xz -> /lib/firmware/rtw89/rtw8852b_fw-2.bin.xz",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("firmware files (-want +got):\n%s", d)
	}
	if rep.Wanted != 12 {
		t.Errorf("wanted = %d, want 12", rep.Wanted)
	}
	if d := cmp.Diff(map[string][]string{"i915": {"i915/adlp_dmc.bin"}, "amdgpu": {"amdgpu/green_sardine_dmcub.bin", "amdgpu/renoir_ta.bin"}}, rep.Missing); d != "" {
		t.Errorf("missing (-want +got):\n%s", d)
	}
	// Only amdgpu has none of its firmware, and the message names the
	// package that has it.
	if d := cmp.Diff([]string{"amdgpu (firmware-amd-graphics)"}, rep.NoFirmware(mods)); d != "" {
		t.Errorf("no firmware (-want +got):\n%s", d)
	}

	// The link resolves inside the tree to the file it names.
	hp := &hostPackages{Tree: tree}
	files, err := systemFilesFromPackages(hp, nil, rep.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Dst == "/lib/firmware/iwlwifi-ty-a0-gf-a0.pnvm" {
			if b, _ := os.ReadFile(f.Src); string(b) != "iwl" || f.Package != "firmware-iwlwifi" {
				t.Errorf("linked firmware: %q from %s", b, f.Package)
			}
		}
	}
}

// TestMicrocodeInitrd: each vendor's updates concatenated in name order
// into the file the kernel's early loader reads, in an uncompressed cpio;
// files that are not microcode left out.
func TestMicrocodeInitrd(t *testing.T) {
	mc, err := microcodeInitrd(firmwareTree(t))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(mc.Data)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			var b strings.Builder
			buf := make([]byte, r.FileSize)
			r.ReadAt(buf, 0)
			b.Write(buf)
			got[r.Name] = b.String()
		}
	}
	want := map[string]string{
		"kernel/x86/microcode/GenuineIntel.bin": "INTEL-AINTEL-B",
		"kernel/x86/microcode/AuthenticAMD.bin": "AMD-19",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("microcode initrd (-want +got):\n%s\nrecords: %v", d, names)
	}
	if d := cmp.Diff([]string{"amd64-microcode 1", "intel-microcode 1"}, mc.Packages); d != "" {
		t.Errorf("packages (-want +got):\n%s", d)
	}
	again, _ := microcodeInitrd(firmwareTree(t))
	if !bytes.Equal(again.Data, mc.Data) {
		t.Error("two builds of the microcode initrd differ")
	}

	empty, err := archive.NewTree(nil)
	if err != nil {
		t.Fatal(err)
	}
	if mc, err := microcodeInitrd(empty); mc != nil || err != nil {
		t.Errorf("without microcode packages: %v, %v; want nothing", mc, err)
	}
}
