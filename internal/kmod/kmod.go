// Package kmod is what the builder, the profile checks and hostd all know
// of kernel module names: one rule, so a module named one way in a
// profile is the same module in modules.dep, modules.builtin and the
// kernel's command line.
package kmod

import (
	"path"
	"strings"
)

// Name is the kernel's name of a module: dashes as underscores, which the
// kernel and modprobe take as the same ("snd-hda-intel" is snd_hda_intel).
func Name(s string) string { return strings.ReplaceAll(s, "-", "_") }

// FileName is the module a file holds: "kernel/fs/ext4/ext4.ko[.xz|.zst]"
// is ext4; "kernel/sound/pci/hda/snd-hda-intel.ko.xz" is snd_hda_intel.
func FileName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return Name(b)
}

// IsFile reports whether a file name is a module's (.ko, compressed or not).
func IsFile(name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}
