package storage

import (
	"strings"
	"testing"
)

// TestChooseInternal: the disk holding thinhost's internal partition wins,
// else the one empty disk; a disk holding anything else is never chosen;
// two of a kind and a serial that matches nothing are refused, naming the
// disks.
func TestChooseInternal(t *testing.T) {
	nvme := InternalDisk{Name: "nvme0n1", Serial: "S4EW123", Bytes: 512 << 30, Empty: true}
	used := InternalDisk{Name: "nvme1n1", Serial: "WD-999", Bytes: 1 << 40, Holds: "a GPT partition table"}
	ours := InternalDisk{Name: "sda", Serial: "ABC", Bytes: 256 << 30, Part: "sda1"}
	empty2 := InternalDisk{Name: "vdb", Serial: "", Bytes: 1 << 30, Empty: true}
	for _, c := range []struct {
		name   string
		disks  []InternalDisk
		serial string
		want   string
		create bool
		errHas []string
	}{
		{"the one empty disk", []InternalDisk{used, nvme}, "", "nvme0n1", true, nil},
		{"ours before an empty one", []InternalDisk{nvme, ours}, "", "sda", false, nil},
		{"ours half written before an empty one", []InternalDisk{nvme, {Name: "sdc", Torn: true, Holds: "data in its first 64 MiB or its last MiB"}}, "", "sdc", false, nil},
		{"ours by serial", []InternalDisk{ours, nvme}, "ABC", "sda", false, nil},
		{"an empty one by serial, padded", []InternalDisk{nvme, empty2}, " S4EW123 ", "nvme0n1", true, nil},
		{"two empty", []InternalDisk{nvme, empty2}, "", "", false, []string{"/dev/nvme0n1", "/dev/vdb", "data_disk_serial"}},
		{"two of ours", []InternalDisk{ours, {Name: "sdb", Part: "sdb1"}}, "", "", false, []string{"/dev/sda", "/dev/sdb"}},
		{"only used", []InternalDisk{used}, "", "", false, []string{"/dev/nvme1n1", "WD-999", "a GPT partition table", "untouched"}},
		{"serial of a used disk", []InternalDisk{used, nvme}, "WD-999", "", false, []string{"a GPT partition table"}},
		{"serial of none", []InternalDisk{used, nvme}, "NOPE", "", false, []string{`serial "NOPE"`, "/dev/nvme0n1", "/dev/nvme1n1"}},
		{"nothing", nil, "", "", false, []string{"no internal disk"}},
	} {
		d, create, err := ChooseInternal(c.disks, c.serial)
		if c.want != "" {
			if err != nil || d.Name != c.want || create != c.create {
				t.Errorf("%s: %s create=%v err=%v; want %s create=%v", c.name, d.Name, create, err, c.want, c.create)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: chose %s, want an error", c.name, d.Name)
			continue
		}
		for _, s := range c.errHas {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q lacks %q", c.name, err, s)
			}
		}
	}
}
