package flash

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/internal/units"
)

// Disk describes a block device or file that could be written to.
type Disk struct {
	// Path is what the user named ("/dev/sdb"); Name the kernel's name
	// ("sdb"), empty for a regular file.
	Path, Name string
	// Size in bytes.
	Size int64
	// Regular is true for a regular file.
	Regular bool
	// Partition is true for a partition of a disk; Parent is that disk.
	Partition bool
	Parent    string
	// Removable is the kernel's removable flag, or true for any disk on
	// USB (many sticks and card readers say 0).
	Removable bool
	Model     string
	Serial    string
	// Transport is usb, nvme, sata, scsi, virtio, mmc, loop or "".
	Transport string
	// Mounts are "device on mountpoint" lines for the disk and its
	// partitions; Swaps the swap areas on it; Holders the device-mapper or
	// RAID devices built on it.
	Mounts, Swaps, Holders []string
	// Dev is the device number (whole disk).
	Dev uint64
	// ReadOnly is the kernel's ro flag.
	ReadOnly bool
}

// InUse lists why something else is using the disk.
func (d *Disk) InUse() []string {
	var out []string
	out = append(out, d.Mounts...)
	for _, s := range d.Swaps {
		out = append(out, s+" is used as swap")
	}
	for _, h := range d.Holders {
		out = append(out, "held by "+h)
	}
	return out
}

// Describe is a one-line summary for listings and confirmations.
func (d *Disk) Describe() string {
	var parts []string
	parts = append(parts, units.Bytes(d.Size))
	if d.Transport != "" {
		parts = append(parts, d.Transport)
	}
	if d.Removable {
		parts = append(parts, "removable")
	} else if !d.Regular {
		parts = append(parts, "fixed")
	}
	if d.Model != "" {
		parts = append(parts, "model "+strconv.Quote(d.Model))
	}
	if d.Serial != "" {
		parts = append(parts, "serial "+strconv.Quote(d.Serial))
	}
	return fmt.Sprintf("%s (%s)", d.Path, strings.Join(parts, ", "))
}

// System is where Inspect and List read the machine's state; tests point
// it at a fake tree.
type System struct {
	// Sys is /sys, Proc is /proc, Dev is /dev.
	Sys, Proc, Dev string
}

// Host is the running machine.
var Host = System{Sys: "/sys", Proc: "/proc", Dev: "/dev"}

// List returns the whole disks a user could mean, removable ones first.
// Loop devices without a backing file, RAM disks, zram and device-mapper
// devices are left out.
func (s System) List() ([]*Disk, error) {
	entries, err := os.ReadDir(filepath.Join(s.Sys, "block"))
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	mounts, err := s.mounts()
	if err != nil {
		return nil, err
	}
	var out []*Disk
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "md") {
			continue
		}
		if strings.HasPrefix(name, "loop") {
			if b, _ := os.ReadFile(filepath.Join(s.Sys, "block", name, "loop", "backing_file")); len(b) == 0 {
				continue
			}
		}
		d, err := s.describeBlock(name, filepath.Join(s.Dev, name), mounts)
		if err != nil {
			continue
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Removable != out[j].Removable {
			return out[i].Removable
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Inspect describes path: a block device (whole disk or partition) or a
// regular file.
func (s System) Inspect(path string) (*Disk, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return &Disk{Path: path, Size: st.Size, Regular: true}, nil
	case unix.S_IFBLK:
	default:
		return nil, fmt.Errorf("inspect %s: %w: it is neither a block device nor a regular file", path, ErrRefused)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	link, err := filepath.EvalSymlinks(filepath.Join(s.Sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return nil, fmt.Errorf("inspect %s: find it in sysfs: %w", path, err)
	}
	mounts, err := s.mounts()
	if err != nil {
		return nil, err
	}
	name := filepath.Base(link)
	if _, err := os.Stat(filepath.Join(link, "partition")); err == nil {
		parent := filepath.Base(filepath.Dir(link))
		d, err := s.describeBlock(parent, filepath.Join(s.Dev, parent), mounts)
		if err != nil {
			return nil, err
		}
		size, _ := readInt(filepath.Join(link, "size"))
		return &Disk{Path: path, Name: name, Size: size * 512, Partition: true, Parent: d.Path,
			Removable: d.Removable, Model: d.Model, Serial: d.Serial, Transport: d.Transport,
			Mounts: d.Mounts, Swaps: d.Swaps, Holders: d.Holders, Dev: d.Dev}, nil
	}
	d, err := s.describeBlock(name, path, mounts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// describeBlock reads /sys/block/NAME.
func (s System) describeBlock(name, path string, mounts map[uint64][]string) (*Disk, error) {
	dir := filepath.Join(s.Sys, "block", name)
	size, err := readInt(filepath.Join(dir, "size"))
	if err != nil {
		return nil, fmt.Errorf("inspect %s: read its size: %w", path, err)
	}
	d := &Disk{Path: path, Name: name, Size: size * 512}
	d.Dev, _ = readDev(filepath.Join(dir, "dev"))
	rm, _ := readInt(filepath.Join(dir, "removable"))
	ro, _ := readInt(filepath.Join(dir, "ro"))
	d.ReadOnly = ro == 1
	d.Model = readTrim(filepath.Join(dir, "device", "model"))
	if v := readTrim(filepath.Join(dir, "device", "vendor")); v != "" && d.Model != "" && !strings.HasPrefix(d.Model, v) {
		d.Model = v + " " + d.Model
	}
	d.Serial = readTrim(filepath.Join(dir, "device", "serial"))
	if d.Serial == "" {
		d.Serial = readTrim(filepath.Join(dir, "serial"))
	}
	real, _ := filepath.EvalSymlinks(dir)
	d.Transport = transport(name, real)
	if d.Transport == "usb" && d.Serial == "" {
		d.Serial = usbSerial(real)
	}
	if d.Transport == "loop" {
		d.Model = "loop, backing " + readTrim(filepath.Join(dir, "loop", "backing_file"))
	}
	d.Removable = rm == 1 || d.Transport == "usb"

	// The disk and its partitions: mounts, swaps, holders.
	devs := map[uint64]string{d.Dev: path}
	holders, _ := os.ReadDir(filepath.Join(dir, "holders"))
	for _, h := range holders {
		d.Holders = append(d.Holders, filepath.Join(s.Dev, h.Name()))
	}
	parts, _ := os.ReadDir(dir)
	for _, p := range parts {
		if _, err := os.Stat(filepath.Join(dir, p.Name(), "partition")); err != nil {
			continue
		}
		if dev, err := readDev(filepath.Join(dir, p.Name(), "dev")); err == nil {
			devs[dev] = filepath.Join(s.Dev, p.Name())
		}
		hs, _ := os.ReadDir(filepath.Join(dir, p.Name(), "holders"))
		for _, h := range hs {
			d.Holders = append(d.Holders, filepath.Join(s.Dev, h.Name())+" (on "+p.Name()+")")
		}
	}
	var devNums []uint64
	for dev := range devs {
		devNums = append(devNums, dev)
	}
	sort.Slice(devNums, func(i, j int) bool { return devNums[i] < devNums[j] })
	for _, dev := range devNums {
		for _, mp := range mounts[dev] {
			d.Mounts = append(d.Mounts, devs[dev]+" is mounted on "+mp)
		}
	}
	// Swap areas by device number: a name prefix would take sdaa1 for a
	// partition of sda.
	swaps, _ := s.swaps()
	for _, sw := range swaps {
		var st unix.Stat_t
		if unix.Stat(sw, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
			continue
		}
		if _, on := devs[st.Rdev]; on {
			d.Swaps = append(d.Swaps, sw)
		}
	}
	return d, nil
}

func transport(name, real string) string {
	switch {
	case strings.HasPrefix(name, "loop"):
		return "loop"
	case strings.Contains(real, "/usb"):
		return "usb"
	case strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.HasPrefix(name, "mmcblk"):
		return "mmc"
	case strings.Contains(real, "/ata"):
		return "sata"
	case strings.Contains(real, "/virtio"):
		return "virtio"
	case strings.HasPrefix(name, "sd"):
		return "scsi"
	}
	return ""
}

// usbSerial walks up from the block device to the USB device and reads its
// serial attribute.
func usbSerial(real string) string {
	for dir := real; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
			return readTrim(filepath.Join(dir, "serial"))
		}
	}
	return ""
}

// mounts maps device numbers to mount points, from mountinfo.
func (s System) mounts() (map[uint64][]string, error) {
	f, err := os.Open(filepath.Join(s.Proc, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	out := map[uint64][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		maj, min, ok := strings.Cut(fields[2], ":")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		dev := unix.Mkdev(uint32(a), uint32(b))
		out[dev] = append(out[dev], unescapeMount(fields[4]))
	}
	return out, sc.Err()
}

func (s System) swaps() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.Proc, "swaps"))
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out, nil
}

// MountDevice returns the device number of the filesystem holding path,
// and of the whole disk under it when that is a partition.
func (s System) MountDevice(path string) (dev, disk uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	dev = st.Dev
	disk = dev
	link, err := filepath.EvalSymlinks(filepath.Join(s.Sys, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))))
	if err != nil {
		return dev, disk, nil // not a block device (tmpfs, overlay...)
	}
	if _, err := os.Stat(filepath.Join(link, "partition")); err == nil {
		if pd, err := readDev(filepath.Join(filepath.Dir(link), "dev")); err == nil {
			disk = pd
		}
	}
	return dev, disk, nil
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func readInt(p string) (int64, error) {
	return strconv.ParseInt(readTrim(p), 10, 64)
}

func readDev(p string) (uint64, error) {
	maj, min, ok := strings.Cut(readTrim(p), ":")
	if !ok {
		return 0, fmt.Errorf("%s: not a device number", p)
	}
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: not a device number", p)
	}
	return unix.Mkdev(uint32(a), uint32(b)), nil
}
