package builder

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/initramfs"
)

// FirmwareDir is where the system image keeps firmware files; the kernel
// looks there first (firmware_class.path on its command line).
const FirmwareDir = "/lib/firmware"

// FirmwarePath is FirmwareDir on the running host.
const FirmwarePath = layout.SystemDir + FirmwareDir

// firmwareHints name the Debian package (component non-free-firmware)
// that ships firmware under a directory or with a prefix, for the
// message about modules whose firmware no locked package has.
var firmwareHints = []struct{ prefix, pkg string }{
	// Debian 13's firmware (and bookworm-backports') moved Intel graphics
	// and MediaTek out of firmware-misc-nonfree.
	{"i915/", "firmware-intel-graphics, or firmware-misc-nonfree before 20250410"},
	{"xe/", "firmware-intel-graphics, or firmware-misc-nonfree before 20250410"},
	{"mediatek/", "firmware-mediatek, or firmware-misc-nonfree before 20250410"},
	{"nvidia/", "firmware-nvidia-graphics"}, {"amdgpu/", "firmware-amd-graphics"}, {"iwlwifi-", "firmware-iwlwifi"},
	{"intel/ibt", "firmware-iwlwifi"}, {"rtl_nic/", "firmware-realtek"}, {"rtw88/", "firmware-realtek"},
	{"rtw89/", "firmware-realtek"}, {"rtl_bt/", "firmware-realtek"}, {"intel/sof", "firmware-sof-signed"},
	{"ath10k/", "firmware-atheros"}, {"ath11k/", "firmware-atheros"}, {"ath12k/", "firmware-atheros"},
	{"tigon/", "firmware-misc-nonfree"}, {"regulatory.db", "wireless-regdb (main)"}, {"amd/amd_sev", "amd64-microcode"},
}

func firmwareHint(name string) string {
	for _, h := range firmwareHints {
		if strings.HasPrefix(name, h.prefix) {
			return h.pkg
		}
	}
	return ""
}

// firmwareIndex maps a firmware name ("i915/tgl_dmc_ver2_12.bin", as
// relative to the firmware directory) to the tree path that ships it.
type firmwareIndex map[string]string

// indexFirmware lists the firmware the locked packages ship, under
// /lib/firmware or /usr/lib/firmware (Debian 13 moved it).
func indexFirmware(tree *archive.Tree) firmwareIndex {
	idx := firmwareIndex{}
	for _, p := range tree.Paths(func(p string, _ *archive.Package) bool {
		return strings.HasPrefix(p, "/lib/firmware/") || strings.HasPrefix(p, "/usr/lib/firmware/")
	}) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, "/usr"), "/lib/firmware/")
		if _, ok := idx[rel]; !ok {
			idx[rel] = p
		}
	}
	return idx
}

// debianAlternatives are firmware names Debian installs through
// update-alternatives (not as package files): the file each stands for.
var debianAlternatives = map[string]string{
	"regulatory.db":     "regulatory.db-debian",
	"regulatory.db.p7s": "regulatory.db.p7s-debian",
}

// ucodeAPI splits an Intel Wi-Fi firmware name, which carries the newest
// firmware API the driver speaks ("iwlwifi-so-a0-gf-a0-89.ucode"): the
// driver tries that one and then older APIs down to its oldest.
var ucodeAPI = regexp.MustCompile(`^(.+-)([0-9]+)(\.ucode)$`)

// compressedSuffixes are the forms the kernel's loader also tries (with
// CONFIG_FW_LOADER_COMPRESS), after the plain name.
var compressedSuffixes = []string{"", ".xz", ".zst"}

// find returns the firmware names matching name: itself or a compressed
// form, or for a glob ("rtw89/rtw8852b_fw*.bin") every match.
func (idx firmwareIndex) find(name string) []string {
	if strings.ContainsAny(name, "*?[") {
		var out []string
		for rel := range idx {
			for _, suf := range compressedSuffixes {
				if ok, err := path.Match(name+suf, rel); err == nil && ok {
					out = append(out, rel)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	for _, suf := range compressedSuffixes {
		if _, ok := idx[name+suf]; ok {
			return []string{name + suf}
		}
	}
	if alt, ok := debianAlternatives[name]; ok {
		if _, ok := idx[alt]; ok {
			return []string{alt}
		}
	}
	// The newest API the packages have that the driver still speaks.
	if m := ucodeAPI.FindStringSubmatch(name); m != nil {
		newest, best := -1, ""
		max, _ := strconv.Atoi(m[2])
		for rel := range idx {
			for _, suf := range compressedSuffixes {
				api, ok := strings.CutPrefix(rel, m[1])
				if !ok {
					continue
				}
				api, ok = strings.CutSuffix(api, m[3]+suf)
				n, err := strconv.Atoi(api)
				if ok && err == nil && n <= max && n > newest {
					newest, best = n, rel
				}
			}
		}
		if best != "" {
			return []string{best}
		}
	}
	return nil
}

// firmwareDirs are firmware a driver family loads by paths it builds at
// run time, which its modules do not name (firmware=): Sound Open
// Firmware's DSP images and topologies. A shipped module whose name has
// the prefix brings every file under the directories.
var firmwareDirs = []struct {
	module string
	dirs   []string
}{
	{"snd_sof_", []string{"intel/sof/", "intel/sof-tplg/", "intel/sof-ipc4/", "intel/sof-ipc4-tplg/", "intel/sof-ace-tplg/", "amd/sof/", "amd/sof-tplg/"}},
}

// FirmwareReport is what firmwareFiles found.
type FirmwareReport struct {
	// Files are the firmware files to ship.
	Files []HostFile
	// Wanted counts the firmware names the modules give; Missing lists,
	// by module, those no locked package ships (Debian does not package
	// every firmware a driver knows).
	Wanted  int
	Missing map[string][]string
}

// firmwareFiles resolves the firmware= names of every module in mods
// against the locked packages' firmware: only what a shipped module may
// load goes into the system image, at FirmwareDir.
func firmwareFiles(mods *initramfs.ModuleSet, tree *archive.Tree) FirmwareReport {
	rep := FirmwareReport{Missing: map[string][]string{}}
	if mods == nil {
		return rep
	}
	idx := indexFirmware(tree)
	seen := map[string]bool{}
	for _, m := range mods.Modules {
		for _, name := range m.Firmware {
			rep.Wanted++
			found := idx.find(name)
			if len(found) == 0 {
				rep.Missing[m.Name] = append(rep.Missing[m.Name], name)
				continue
			}
			for _, rel := range found {
				if seen[rel] {
					continue
				}
				seen[rel] = true
				dst := rel
				if debianAlternatives[name] == rel {
					dst = name // where the kernel looks
				}
				rep.Files = append(rep.Files, HostFile{Src: idx[rel], Dst: FirmwareDir + "/" + dst})
			}
		}
	}
	for _, fd := range firmwareDirs {
		if !slices.ContainsFunc(mods.Modules, func(m *initramfs.Module) bool { return strings.HasPrefix(m.Name, fd.module) }) {
			continue
		}
		for rel, p := range idx {
			if !seen[rel] && slices.ContainsFunc(fd.dirs, func(d string) bool { return strings.HasPrefix(rel, d) }) {
				seen[rel] = true
				rep.Files = append(rep.Files, HostFile{Src: p, Dst: FirmwareDir + "/" + rel})
			}
		}
	}
	sort.Slice(rep.Files, func(i, j int) bool { return rep.Files[i].Dst < rep.Files[j].Dst })
	return rep
}

// NoFirmware lists the modules none of whose firmware a locked package
// ships, with the package that would ("amdgpu (firmware-amd-graphics)"):
// those drivers fail on real hardware or run without their firmware.
func (r FirmwareReport) NoFirmware(mods *initramfs.ModuleSet) []string {
	var out []string
	for _, m := range mods.Modules {
		missing := r.Missing[m.Name]
		if len(missing) == 0 || len(missing) < len(m.Firmware) {
			continue
		}
		s := m.Name
		if h := firmwareHint(missing[0]); h != "" {
			s += " (" + h + ")"
		}
		out = append(out, s)
	}
	return out
}

// Microcode is the early microcode initrd: the CPU vendors' microcode
// updates the kernel applies before anything else runs.
type Microcode struct {
	// Data is the uncompressed cpio archive (the kernel reads early
	// microcode only from an uncompressed one).
	Data []byte
	// Packages are the Debian packages it was made from.
	Packages []string
}

// microcodeInitrd makes the early microcode initrd from the locked
// packages' intel-ucode and amd-ucode files (intel-microcode,
// amd64-microcode), as Debian's initramfs-tools hooks do: each vendor's
// updates concatenated into kernel/x86/microcode/<Vendor>.bin, where the
// kernel picks the one for its CPU. It returns nil when neither package
// is locked.
func microcodeInitrd(tree *archive.Tree) (*Microcode, error) {
	vendors := []struct {
		file string
		keep func(rel string) bool
	}{
		{"GenuineIntel.bin", func(rel string) bool {
			return strings.HasPrefix(rel, "intel-ucode/") && !strings.HasSuffix(rel, ".initramfs")
		}},
		{"AuthenticAMD.bin", func(rel string) bool {
			return strings.HasPrefix(rel, "amd-ucode/") && strings.HasSuffix(rel, ".bin")
		}},
	}
	idx := indexFirmware(tree)
	var recs []cpio.Record
	pkgs := map[string]bool{}
	for _, v := range vendors {
		var rels []string
		for rel := range idx {
			if v.keep(rel) {
				rels = append(rels, rel)
			}
		}
		if len(rels) == 0 {
			continue
		}
		sort.Strings(rels)
		var blob bytes.Buffer
		for _, rel := range rels {
			f, err := tree.Lookup(idx[rel])
			if err != nil {
				return nil, fmt.Errorf("read microcode %s: %w", rel, err)
			}
			if err := appendFile(&blob, f.File); err != nil {
				return nil, fmt.Errorf("read microcode %s: %w", rel, err)
			}
			pkgs[f.Package.Name+" "+f.Package.Version] = true
		}
		recs = append(recs, cpio.StaticRecord(blob.Bytes(), cpio.Info{Name: "kernel/x86/microcode/" + v.file, Mode: cpio.S_IFREG | 0o644}))
	}
	if len(recs) == 0 {
		return nil, nil
	}
	var out bytes.Buffer
	w := cpio.Newc.Writer(&out)
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return nil, fmt.Errorf("write microcode initrd: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, fmt.Errorf("write microcode initrd: %w", err)
	}
	mc := &Microcode{Data: out.Bytes()}
	for p := range pkgs {
		mc.Packages = append(mc.Packages, p)
	}
	sort.Strings(mc.Packages)
	return mc, nil
}

func appendFile(w io.Writer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
