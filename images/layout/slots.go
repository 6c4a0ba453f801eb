package layout

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A/B system slots. The disk holds two: each a system partition
// (SystemAName, SystemBName) and a directory of boot files on the ESP
// (thinhost/a, thinhost/b) with a loader entry. A build writes slot a; an
// update (hostd) writes the slot that is not running and gives its entry a
// bounded number of tries, which systemd-boot counts down (the Boot Loader
// Specification's boot counting: the entry's file name carries the tries
// left); hostd marks the entry good once the host is ready. An entry whose
// tries are used up sorts last, so the loader boots the other slot again.
var Slots = []string{"a", "b"}

// SlotArg is the kernel command line parameter that names the slot a
// loader entry boots ("thinhost.slot=b"); without it, slot a.
const SlotArg = "thinhost.slot"

// SystemName is the PARTLABEL of a slot's system partition.
func SystemName(slot string) string { return "thinhost-system-" + slot }

// OtherSlot is the slot an update writes while slot runs.
func OtherSlot(slot string) string {
	if slot == "b" {
		return "a"
	}
	return "b"
}

// ValidSlot reports whether s names a slot.
func ValidSlot(s string) bool { return s == "a" || s == "b" }

// SlotInfoPath is the slot's description on the ESP (SlotInfo, JSON).
func SlotInfoPath(slot string) string { return "thinhost/" + slot + "/slot.json" }

// SlotInfo describes what a slot holds: enough for hostd to show it and
// to write the slot's loader entry, as the builder wrote slot a's.
type SlotInfo struct {
	// Build names the build (its inputs' hash, shortened).
	Build string `json:"build"`
	// Profile is the profile's file name; ProfileSHA256 its hash.
	Profile       string `json:"profile,omitempty"`
	ProfileSHA256 string `json:"profile_sha256,omitempty"`
	// Loader is LoaderSystemdBoot or LoaderGRUB: the boot chain the image
	// was built for. An update keeps the disk's chain.
	Loader string `json:"loader"`
	// Title is the boot menu's title; Cmdline the kernel command line
	// without SlotArg (the entry adds it).
	Title   string `json:"title"`
	Cmdline string `json:"cmdline"`
	// Microcode is true when the slot has an early microcode initrd.
	Microcode bool `json:"microcode,omitempty"`
}

// The boot chains.
const (
	LoaderSystemdBoot = "systemd-boot"
	LoaderGRUB        = "grub"
	// LoaderUKI is systemd-boot starting a unified kernel image, both
	// signed with the profile's own keys.
	LoaderUKI = "systemd-boot-uki"
)

// DefaultTries is how many boots an updated slot gets to reach ready.
const DefaultTries = 3

// LoaderConf is systemd-boot's loader.conf: the default is the first
// thinhost entry in systemd-boot's order, which puts entries without
// tries left last and then the highest version first (entries carry a
// sort-key). timeout 0 boots it at once; holding a key shows the menu.
const LoaderConf = "default thinhost-*\ntimeout 0\neditor no\nconsole-mode keep\n"

// EntryName is the file name of a slot's loader entry under
// loader/entries: "thinhost-b+3.conf" while the slot has tries left to
// count (tries >= 0: "thinhost-b+0.conf" is used up), "thinhost-b.conf"
// once it booted well (tries < 0).
func EntryName(slot string, tries int) string {
	if tries < 0 {
		return "thinhost-" + slot + ".conf"
	}
	return fmt.Sprintf("thinhost-%s+%d.conf", slot, tries)
}

// EntryDir is where systemd-boot reads loader entries.
const EntryDir = "loader/entries"

var entryRE = regexp.MustCompile(`^thinhost-([ab])(?:\+([0-9]+)(?:-([0-9]+))?)?\.conf$`)

// Entry is a loader entry's state, read from its file name.
type Entry struct {
	Slot string
	// Counting is true while the entry carries a boot counter: TriesLeft
	// are left, TriesDone were used.
	Counting             bool
	TriesLeft, TriesDone int
}

// ParseEntryName reads a thinhost loader entry's file name.
func ParseEntryName(name string) (Entry, bool) {
	m := entryRE.FindStringSubmatch(strings.ToLower(name))
	if m == nil {
		return Entry{}, false
	}
	e := Entry{Slot: m[1]}
	if m[2] != "" {
		e.Counting = true
		e.TriesLeft, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			e.TriesDone, _ = strconv.Atoi(m[3])
		}
	}
	return e, true
}

// SystemdBootEntry is a slot's loader entry. version orders the slots
// (a newer update has a higher one): systemd-boot boots the highest that
// has tries left. A unified kernel image carries its own command line
// (systemd-stub ignores another under Secure Boot), without SlotArg: the
// same signed file serves either slot, and hostd reads the slot from the
// entry systemd-boot says it started (LoaderEntrySelected).
func SystemdBootEntry(slot string, info SlotInfo, version int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "title %s (slot %s)\nsort-key thinhost\nversion %d\n", info.Title, slot, version)
	if info.Loader == LoaderUKI {
		fmt.Fprintf(&b, "efi /%s\n", UKIPath(slot))
		return b.String()
	}
	fmt.Fprintf(&b, "linux /%s\n", KernelPath(slot))
	// The microcode's initrd comes first: the kernel looks for early
	// microcode at the start of the concatenated initrds.
	if info.Microcode {
		fmt.Fprintf(&b, "initrd /%s\n", MicrocodePath(slot))
	}
	fmt.Fprintf(&b, "initrd /%s\noptions %s\n", InitrdPath(slot), SlotCmdline(info.Cmdline, slot))
	return b.String()
}

// SlotCmdline is the kernel command line of a slot's entry.
func SlotCmdline(cmdline, slot string) string {
	return strings.TrimSpace(cmdline + " " + SlotArg + "=" + slot)
}

// EntryVersion reads the version line of a loader entry (0 when it has
// none: entries written before slots had versions).
func EntryVersion(entry string) int {
	for _, l := range strings.Split(entry, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "version "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil && n >= 0 {
				return n
			}
		}
	}
	return 0
}

// SlotFromCmdline is the slot a kernel command line names (SlotArg),
// "a" when it names none or an unknown one.
func SlotFromCmdline(cmdline string) string {
	s, _ := CmdlineSlot(cmdline)
	return s
}

// CmdlineSlot is the slot a kernel command line names (SlotArg), and
// whether it names one ("a" and false when not).
func CmdlineSlot(cmdline string) (string, bool) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, SlotArg+"="); ok && ValidSlot(v) {
			return v, true
		}
	}
	return "a", false
}

// GRUBEnvPath is GRUB's environment block on the ESP: the slot on trial
// and its boots left (GRUB has no boot counting of its own; the
// configuration counts down here, with save_env).
const GRUBEnvPath = "thinhost/grubenv"

// GRUBEnvSize is an environment block's fixed size: GRUB rewrites it in
// place, never growing it.
const GRUBEnvSize = 1024

// GRUB environment variables thinhost keeps.
const (
	GRUBTry   = "thinhost_try"
	GRUBTries = "thinhost_tries"
)

// GRUBEnv is an environment block holding vars (names and values of
// letters, digits and underscores), padded with '#' as grub-editenv
// writes it.
func GRUBEnv(vars map[string]string) []byte {
	b := []byte("# GRUB Environment Block\n")
	for _, k := range []string{GRUBTry, GRUBTries} {
		if v, ok := vars[k]; ok {
			b = append(b, k+"="+v+"\n"...)
		}
	}
	for len(b) < GRUBEnvSize {
		b = append(b, '#')
	}
	return b[:GRUBEnvSize]
}

// ParseGRUBEnv reads an environment block's variables.
func ParseGRUBEnv(b []byte) (map[string]string, bool) {
	const sig = "# GRUB Environment Block\n"
	if len(b) != GRUBEnvSize || !strings.HasPrefix(string(b), sig) {
		return nil, false
	}
	vars := map[string]string{}
	for _, l := range strings.Split(string(b[len(sig):]), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	return vars, true
}

// GRUBConfig is the Secure Boot chain's GRUB configuration: one menu
// entry per slot in infos, the default the good slot, unless the
// environment block names a slot on trial with boots left: then GRUB
// counts one down (save_env) and boots that one. A trial whose boots are
// used up boots the good slot again. Each entry boots its slot's kernel at
// once (no menu) with the microcode initrd first and tells the kernel
// which ESP booted (GRUB knows the partition it was loaded from; hostd
// finds its disk by it). Debian's signed GRUB has the commands this needs
// built in: nothing is loaded that Secure Boot would refuse.
func GRUBConfig(good string, infos map[string]SlotInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, `set timeout=0
set timeout_style=hidden
probe --set=thinhost_esp --part-uuid $root
set thinhost_slot=%s
if [ -f /%s ]; then
	load_env --file /%s %s %s
fi
if [ -n "$%s" ]; then
`, good, GRUBEnvPath, GRUBEnvPath, GRUBTry, GRUBTries, GRUBTry)
	// No arithmetic in GRUB's script: one branch per count.
	for n := MaxGRUBTries; n >= 1; n-- {
		kw := "elif"
		if n == MaxGRUBTries {
			kw = "if"
		}
		fmt.Fprintf(&b, "\t%s [ \"$%s\" = %d ]; then\n\t\tset %s=%d\n\t\tset thinhost_slot=\"$%s\"\n\t\tsave_env --file /%s %s\n",
			kw, GRUBTries, n, GRUBTries, n-1, GRUBTry, GRUBEnvPath, GRUBTries)
	}
	b.WriteString("\tfi\nfi\nset default=\"thinhost-$thinhost_slot\"\n")
	for _, slot := range Slots {
		info, ok := infos[slot]
		if !ok {
			continue
		}
		initrds := "/" + InitrdPath(slot)
		if info.Microcode {
			initrds = "/" + MicrocodePath(slot) + " " + initrds
		}
		// Each word of the command line quoted: a profile's value never
		// becomes GRUB script ($, ;, quotes); GRUB joins the words with
		// spaces, as they were.
		var args []string
		for _, w := range strings.Fields(SlotCmdline(info.Cmdline, slot)) {
			args = append(args, grubQuote(w))
		}
		fmt.Fprintf(&b, "menuentry %s --id thinhost-%s {\n\tlinux /%s %s %s=$thinhost_esp\n\tinitrd %s\n}\n",
			grubQuote(info.Title+" (slot "+slot+")"), slot, KernelPath(slot), strings.Join(args, " "), ESPArg, initrds)
	}
	return b.String()
}

// MaxGRUBTries is the most boots GRUB's configuration counts for a slot on
// trial.
const MaxGRUBTries = 10

// grubQuote quotes s as one GRUB word.
func grubQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// The files of an update (hostd's PUT /v1/update stream), by name.
const (
	UpdateSystem    = "system.squashfs"
	UpdateKernel    = "vmlinuz"
	UpdateInitrd    = "initrd.zst"
	UpdateMicrocode = "microcode.cpio"
	UpdateUKI       = "linux.efi"
)

// UpdateBootFiles are the boot files an update of a slot described by
// info carries, by update name, with their paths on the ESP for slot.
func UpdateBootFiles(info SlotInfo, slot string) [][2]string {
	if info.Loader == LoaderUKI {
		return [][2]string{{UpdateUKI, UKIPath(slot)}}
	}
	out := [][2]string{{UpdateKernel, KernelPath(slot)}, {UpdateInitrd, InitrdPath(slot)}}
	if info.Microcode {
		out = append(out, [2]string{UpdateMicrocode, MicrocodePath(slot)})
	}
	return out
}
