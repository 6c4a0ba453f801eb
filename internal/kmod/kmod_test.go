package kmod

import "testing"

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"snd-hda-intel": "snd_hda_intel", "ext4": "ext4", "mac80211_hwsim": "mac80211_hwsim"} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"kernel/fs/ext4/ext4.ko": "ext4", "kernel/sound/pci/hda/snd-hda-intel.ko.xz": "snd_hda_intel",
		"/system/lib/modules/6.1/kernel/drivers/gpu/drm/i915/i915.ko.zst": "i915", "ext4": "ext4"} {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
	for name, want := range map[string]bool{"ext4.ko": true, "i915.ko.xz": true, "x.ko.zst": true, "modules.dep": false, "x.ko.gz": false} {
		if IsFile(name) != want {
			t.Errorf("IsFile(%q) = %v", name, !want)
		}
	}
}
