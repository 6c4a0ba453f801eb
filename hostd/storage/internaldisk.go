package storage

import (
	"fmt"
	"sort"
	"strings"

	"github.com/thinhost/thinhost/internal/units"
)

// InternalDataName is the GPT name of the data partition hostd makes on an
// internal disk (storage { data_disk = "internal" }): not the boot disk's
// "thinhost-data", so the two are never taken for each other.
const InternalDataName = "thinhost-data-internal"

// InternalDisk is a disk hostd may consider for the data partition with
// data_disk = "internal", as read from /sys/block and the disk's ends.
type InternalDisk struct {
	// Name is the kernel's name (nvme0n1).
	Name   string
	Serial string
	Bytes  int64
	// Part is the partition named InternalDataName on it, "" when none.
	Part string
	// Empty says the disk's first 64 MiB and last MiB are all zeros: no
	// partition table, no filesystem where partitions start, nothing
	// anyone left there.
	Empty bool
	// Holds says what is on it when it is neither (for the message).
	Holds string
	// Torn says it holds thinhost's internal partition table in its
	// backup copy alone: a boot stopped while writing it (the backup is
	// written first). hostd finishes the table.
	Torn bool
}

func (d InternalDisk) String() string {
	s := fmt.Sprintf("/dev/%s (%s", d.Name, units.Bytes(d.Bytes))
	if d.Serial != "" {
		s += ", serial " + d.Serial
	}
	return s + ")"
}

// ChooseInternal picks the disk for the data partition among the internal
// disks present (the boot disk and USB disks already left out): the one
// holding thinhost's internal data partition, else the one empty disk, in
// both cases only the disk with serial when it is set. It never picks a
// disk that holds anything else; create says the disk is empty and gets
// a partition table. Two candidates of one kind are refused: hostd does
// not guess between disks.
func ChooseInternal(disks []InternalDisk, serial string) (d InternalDisk, create bool, err error) {
	serial = strings.TrimSpace(serial)
	var pool []InternalDisk
	for _, d := range disks {
		if serial == "" || strings.TrimSpace(d.Serial) == serial {
			pool = append(pool, d)
		}
	}
	sort.Slice(pool, func(i, j int) bool { return pool[i].Name < pool[j].Name })
	list := func(ds []InternalDisk) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.String())
		}
		return strings.Join(s, ", ")
	}
	if serial != "" && len(pool) == 0 {
		if len(disks) == 0 {
			return d, false, fmt.Errorf("no internal disk with serial %q: this machine shows none (is its driver among the profile's?)", serial)
		}
		return d, false, fmt.Errorf("no internal disk with serial %q; there are %s", serial, list(disks))
	}
	var held, empty, other []InternalDisk
	for _, d := range pool {
		switch {
		case d.Part != "" || d.Torn:
			held = append(held, d)
		case d.Empty:
			empty = append(empty, d)
		default:
			other = append(other, d)
		}
	}
	switch {
	case len(held) == 1:
		return held[0], false, nil
	case len(held) > 1:
		return d, false, fmt.Errorf("internal disks %s all hold a %s partition: hostd uses none of them; name the one to use with data_disk_serial", list(held), InternalDataName)
	case len(empty) == 1:
		return empty[0], true, nil
	case len(empty) > 1:
		return d, false, fmt.Errorf("internal disks %s are all empty: hostd does not guess which to use; name one with data_disk_serial", list(empty))
	case len(other) > 0:
		var why []string
		for _, d := range other {
			why = append(why, d.String()+" holds "+d.Holds)
		}
		return d, false, fmt.Errorf("no empty internal disk for the data partition: %s; hostd makes its partition only on a disk whose first 64 MiB and last MiB are zeros and leaves these untouched: back up what is on one and wipe it whole (blkdiscard), or keep data_disk = \"boot\"", strings.Join(why, "; "))
	}
	return d, false, fmt.Errorf("no internal disk (the boot disk and USB disks do not count): is its driver among the profile's?")
}
