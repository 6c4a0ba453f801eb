package flash

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/thinhost/thinhost/internal/units"
)

// ErrRefused marks every refusal to write a target; nothing was written.
var ErrRefused = errors.New("refusing to flash")

// Options relax the checks, each only when the user clearly asked.
type Options struct {
	// AllowFixed writes to a disk the kernel does not call removable.
	AllowFixed bool
	// AllowPartition writes into a partition instead of a whole disk.
	AllowPartition bool
	// AllowFile writes to a regular file (an existing one is overwritten).
	AllowFile bool
	// KeepData rewrites only the boot and system partitions of a device
	// that already holds a thinhost layout the image fits, and leaves its
	// partition table and data partition as they are.
	KeepData bool
}

// Check returns nil when image may be written to target, and otherwise an
// ErrRefused error that names the device, says why and what to do. It
// reads the machine's state from s.
func (s System) Check(image string, imageSize int64, target *Disk, opts Options) error {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w %s: %s", ErrRefused, target.Path, fmt.Sprintf(format, a...))
	}
	if target.Regular {
		if !opts.AllowFile {
			return refuse("it is a regular file, not a disk; pass --allow-file to write the image into a file, or name a whole disk such as /dev/sdb (see thinhost flash --list)")
		}
		if same(image, target.Path) {
			return refuse("it is the image itself")
		}
		return nil
	}
	if target.Partition && !opts.AllowPartition {
		return refuse("it is a partition of %s; a thinhost image is a whole disk: name %s instead (or pass --allow-partition)", target.Parent, target.Parent)
	}
	if use := target.InUse(); len(use) > 0 {
		return refuse("it is in use: %s; unmount (and swapoff) everything on it first", strings.Join(use, "; "))
	}
	if _, root, err := s.MountDevice("/"); err == nil && root == target.Dev {
		return refuse("it holds the running system's root filesystem")
	}
	if _, disk, err := s.MountDevice(image); err == nil && disk == target.Dev {
		return refuse("it holds the image file %s", image)
	}
	if target.ReadOnly {
		return refuse("the kernel has it read-only (a write-protect switch?)")
	}
	if target.Size < imageSize {
		return refuse("it holds %s, less than the image's %s: use a larger device", units.Bytes(target.Size), units.Bytes(imageSize))
	}
	if !target.Removable && !opts.AllowFixed {
		return refuse("it is not a removable disk (%s); if you really mean this internal disk, pass --allow-fixed", target.Describe())
	}
	return nil
}

func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
