package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/thinhost/thinhost/images/layout"
)

const (
	sectorSize = 512
	mib        = 1 << 20
	// backupGPTSectors is the backup partition array (32 sectors of 128
	// entries × 128 bytes) plus the backup header.
	backupGPTSectors = 33
)

// Sizes is the layout in bytes. DataSize 0 fills the rest of the disk.
type Sizes struct {
	Image, ESP, System, Data int64
	// Media are raw partitions between the system slots and data, each
	// holding one file byte for byte (a guest's install ISO).
	Media []Media
}

// Media is a file carried as a raw partition: QEMU attaches the partition
// as a CD-ROM, with no filesystem in between.
type Media struct {
	// Name is the partition's PARTLABEL (layout.MediaName).
	Name string
	// Path is the file; Size its length, rounded up to whole MiB in the
	// partition.
	Path string
	Size int64
}

// Boot is what goes on the ESP.
type Boot struct {
	// Bootloader is systemd-boot's EFI binary (systemd-bootx64.efi).
	Bootloader string
	// Shim and GRUB, when set, boot instead through the Secure Boot
	// chain: Debian's signed shimx64.efi and grubx64.efi, with a GRUB
	// configuration in place of systemd-boot's loader entries.
	Shim, GRUB string
	// Kernel and Initrd are files to copy; Cmdline is the kernel command
	// line of the loader entry.
	Kernel, Initrd string
	// Microcode is the early microcode initrd (an uncompressed cpio),
	// loaded before Initrd; "" leaves it out.
	Microcode string
	Cmdline   string
	// UKI, when set, is the own-keys chain (layout.LoaderUKI): a signed
	// unified kernel image holding Kernel, Initrd, Microcode and Cmdline,
	// which the entry starts in their place; Bootloader is then signed
	// too. EnrollKeys are the files of layout.EnrollKeysDir (PK.auth,
	// KEK.auth, db.auth and certificates), which systemd-boot enrolls
	// from setup mode.
	UKI        string
	EnrollKeys map[string][]byte
	// Title is shown in the boot menu.
	Title string
	// Build names the build; Profile and ProfileSHA256 its profile (all
	// recorded in the slot's layout.SlotInfo).
	Build, Profile, ProfileSHA256 string
}

// SlotInfo is what the ESP records of the slot Boot fills.
func (b Boot) SlotInfo() layout.SlotInfo {
	loader := layout.LoaderSystemdBoot
	switch {
	case b.Shim != "":
		loader = layout.LoaderGRUB
	case b.UKI != "":
		// The image holds microcode and command line.
		return layout.SlotInfo{Build: b.Build, Profile: b.Profile, ProfileSHA256: b.ProfileSHA256, Loader: layout.LoaderUKI,
			Title: b.title(), Cmdline: b.Cmdline}
	}
	return layout.SlotInfo{Build: b.Build, Profile: b.Profile, ProfileSHA256: b.ProfileSHA256, Loader: loader,
		Title: b.title(), Cmdline: b.Cmdline, Microcode: b.Microcode != ""}
}

// Config is everything Write needs.
type Config struct {
	Sizes Sizes
	Boot  Boot
	// System is the read-only system image written into system slot A;
	// empty leaves the slots empty.
	System []SystemFile
	// Seed makes the disk and partition GUIDs a function of the build's
	// inputs, so two builds of the same inputs are identical.
	Seed []byte
	// FirstBoot is the payload of the first-boot secrets record
	// (layout.FirstBootRecord) left after the data partition's marker;
	// nil: none.
	FirstBoot []byte
	Log       *slog.Logger
}

// Partition is one partition as written.
type Partition struct {
	Index      int
	Name       string
	Type       string
	GUID       string
	Start, End uint64 // sectors, inclusive
}

// Size is the partition's size in bytes.
func (p Partition) Size() int64 { return int64(p.End-p.Start+1) * sectorSize }

// Plan computes the partition table for sizes: partitions 1 MiB aligned, in
// the order ESP, system A, system B, data; data last so hostd can grow it.
func Plan(s Sizes, seed []byte) ([]Partition, error) {
	for _, v := range []int64{s.Image, s.ESP, s.System, s.Data} {
		if v%mib != 0 {
			return nil, fmt.Errorf("plan partitions: sizes must be whole MiB, got %d bytes", v)
		}
	}
	total := uint64(s.Image / sectorSize)
	// The last usable sector sits before the backup GPT.
	lastUsable := total - backupGPTSectors - 1
	next := uint64(mib / sectorSize) // first partition at 1 MiB
	var parts []Partition
	add := func(name, typ string, size int64) error {
		if size == 0 {
			// Fill to the last whole MiB before the backup GPT.
			end := (lastUsable+1)/(mib/sectorSize)*(mib/sectorSize) - 1
			if end < next {
				return fmt.Errorf("plan partitions: no room left for %s", name)
			}
			size = int64(end-next+1) * sectorSize
		}
		n := uint64(size / sectorSize)
		if next+n-1 > lastUsable {
			return fmt.Errorf("plan partitions: %s (%d MiB) does not fit in a %d MiB image: raise storage.image_size in the profile", name, size/mib, s.Image/mib)
		}
		parts = append(parts, Partition{
			Index: len(parts) + 1, Name: name, Type: typ,
			GUID:  seededGUID(seed, "partition:"+name),
			Start: next, End: next + n - 1,
		})
		next += n
		return nil
	}
	type planned struct {
		name, typ string
		size      int64
	}
	order := []planned{
		{layout.ESPName, layout.TypeESP, s.ESP},
		{layout.SystemAName, layout.TypeSystem, s.System},
		{layout.SystemBName, layout.TypeSystem, s.System},
	}
	for _, m := range s.Media {
		if m.Size <= 0 {
			return nil, fmt.Errorf("plan partitions: media %s is empty", m.Name)
		}
		order = append(order, planned{m.Name, layout.TypeMedia, (m.Size + mib - 1) / mib * mib})
	}
	order = append(order, planned{layout.DataName, layout.TypeData, s.Data})
	for _, p := range order {
		if err := add(p.name, p.typ, p.size); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// seededGUID derives an RFC 4122 version-4-shaped GUID from seed and what.
func seededGUID(seed []byte, what string) string {
	h := sha256.Sum256(append(append([]byte{}, seed...), what...))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// Result describes the written image.
type Result struct {
	Partitions []Partition
	// ESPFiles are the files written to the ESP with their sizes.
	ESPFiles map[string]int64
	// Manifest lists the system image's files.
	Manifest []ManifestEntry
}

// Write lays out the disk on f, which must be an empty regular file (it is
// truncated to the image size, so unwritten space stays sparse).
func Write(ctx context.Context, f *os.File, cfg Config) (*Result, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	parts, err := Plan(cfg.Sizes, cfg.Seed)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(cfg.Sizes.Image); err != nil {
		return nil, fmt.Errorf("size image %s: %w", f.Name(), err)
	}
	d, err := diskfs.OpenBackend(file.New(f, false), diskfs.WithSectorSize(sectorSize))
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", f.Name(), err)
	}
	table := &gpt.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		ProtectiveMBR:      true,
		GUID:               seededGUID(cfg.Seed, "disk"),
	}
	for _, p := range parts {
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Index: p.Index, Start: p.Start, End: p.End, Size: uint64(p.Size()),
			Type: gpt.Type(p.Type), Name: p.Name, GUID: p.GUID,
		})
	}
	if err := d.Partition(table); err != nil {
		return nil, fmt.Errorf("write partition table to %s: %w", f.Name(), err)
	}
	log.Info("partitioned image", "image", f.Name(), "partitions", len(parts))

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, err := writeESP(d, parts[0], cfg.Boot)
	if err != nil {
		return nil, fmt.Errorf("write ESP of %s: %w", f.Name(), err)
	}
	if err := fixFAT32(f, int64(parts[0].Start)*sectorSize); err != nil {
		return nil, fmt.Errorf("finish ESP of %s: %w", f.Name(), err)
	}
	log.Info("wrote ESP", "files", len(files))
	res := &Result{Partitions: parts, ESPFiles: files}
	if len(cfg.System) > 0 {
		if res.Manifest, err = writeSystem(d, parts[1], cfg.System); err != nil {
			return nil, fmt.Errorf("write the system image to %s of %s: %w", parts[1].Name, f.Name(), err)
		}
		log.Info("wrote system image", "files", len(res.Manifest))
	}
	for i, m := range cfg.Sizes.Media {
		p := parts[3+i]
		if err := writeMedia(ctx, f, p, m); err != nil {
			return nil, fmt.Errorf("write %s into partition %s of %s: %w", m.Path, p.Name, f.Name(), err)
		}
		log.Info("wrote media", "partition", p.Name, "file", m.Path, "bytes", m.Size)
	}
	// The data partition stays empty but for the marker that lets hostd
	// tell it from someone's data.
	data := parts[len(parts)-1]
	if _, err := f.WriteAt(layout.DataMarker(data.End-data.Start+1), int64(data.Start)*sectorSize); err != nil {
		return nil, fmt.Errorf("mark the empty data partition of %s: %w", f.Name(), err)
	}
	if cfg.FirstBoot != nil {
		rec, err := layout.FirstBootRecord(cfg.FirstBoot)
		if err != nil {
			return nil, err
		}
		if _, err := f.WriteAt(rec, int64(data.Start)*sectorSize+layout.DataMarkerSize); err != nil {
			return nil, fmt.Errorf("write the first-boot secrets into the data partition of %s: %w", f.Name(), err)
		}
	}
	return res, nil
}

// writeMedia copies the file into its partition, leaving holes where the
// file has zeros so the image stays sparse.
func writeMedia(ctx context.Context, f *os.File, p Partition, m Media) error {
	src, err := os.Open(m.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != m.Size {
		return fmt.Errorf("it is %d bytes, not the %d planned (did it change during the build?)", fi.Size(), m.Size)
	}
	buf := make([]byte, 4*mib)
	zero := make([]byte, len(buf))
	off := int64(p.Start) * sectorSize
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(src, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := f.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// title is the boot menu's name for the image.
func (b Boot) title() string {
	if b.Title == "" {
		return "thinhost"
	}
	return b.Title
}

func writeESP(d *disk.Disk, p Partition, b Boot) (map[string]int64, error) {
	fs, err := fat32.Create(d.Backend, fat32Size(p.Size()), int64(p.Start)*sectorSize, sectorSize, layout.ESPVolumeLabel, true)
	if err != nil {
		return nil, fmt.Errorf("create FAT32: %w", err)
	}
	written := map[string]int64{}
	slot := "a"
	info := b.SlotInfo()
	infoJSON, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	type copyFile struct {
		dst  string
		src  string
		data string
	}
	copies := []copyFile{
		{dst: layout.BootloaderPath, src: b.Bootloader},
		{dst: layout.LoaderConfPath, data: layout.LoaderConf},
		// Slot a of a new image has no boot counter: it is all there is.
		{dst: layout.EntryDir + "/" + layout.EntryName(slot, -1), data: layout.SystemdBootEntry(slot, info, 1)},
	}
	if b.Shim != "" {
		copies = []copyFile{
			{dst: layout.BootloaderPath, src: b.Shim},
			{dst: layout.ShimGRUBPath, src: b.GRUB},
			{dst: layout.GRUBConfigPath, data: layout.GRUBConfig(slot, map[string]layout.SlotInfo{slot: info})},
			{dst: layout.GRUBEnvPath, data: string(layout.GRUBEnv(nil))},
		}
	}
	copies = append(copies, copyFile{dst: layout.SlotInfoPath(slot), data: string(infoJSON) + "\n"})
	if b.UKI != "" {
		copies[1].data = layout.LoaderConfFor(layout.LoaderUKI)
		copies = append(copies, copyFile{dst: layout.UKIPath(slot), src: b.UKI},
			copyFile{dst: layout.EnrollHowToPath, data: layout.EnrollHowTo})
		names := make([]string, 0, len(b.EnrollKeys))
		for n := range b.EnrollKeys {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			copies = append(copies, copyFile{dst: layout.EnrollKeysDir + "/" + n, data: string(b.EnrollKeys[n])})
		}
	} else {
		copies = append(copies,
			copyFile{dst: layout.KernelPath(slot), src: b.Kernel},
			copyFile{dst: layout.InitrdPath(slot), src: b.Initrd})
		if b.Microcode != "" {
			copies = append(copies, copyFile{dst: layout.MicrocodePath(slot), src: b.Microcode})
		}
	}
	made := map[string]bool{}
	for _, c := range copies {
		if err := mkdirAll(fs, path.Dir(c.dst), made); err != nil {
			return nil, err
		}
		var r io.Reader = strings.NewReader(c.data)
		if c.src != "" {
			in, err := os.Open(c.src)
			if err != nil {
				return nil, fmt.Errorf("open %s for the ESP: %w", c.src, err)
			}
			defer in.Close()
			r = in
		}
		out, err := fs.OpenFile("/"+c.dst, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return nil, fmt.Errorf("create /%s: %w", c.dst, err)
		}
		n, err := io.Copy(out, r)
		if err != nil {
			return nil, fmt.Errorf("write /%s: %w", c.dst, err)
		}
		if err := out.Close(); err != nil {
			return nil, fmt.Errorf("close /%s: %w", c.dst, err)
		}
		written[c.dst] = n
	}
	return written, nil
}

func mkdirAll(fs filesystem.FileSystem, dir string, made map[string]bool) error {
	if dir == "." || dir == "/" || dir == "" || made[dir] {
		return nil
	}
	if err := mkdirAll(fs, path.Dir(dir), made); err != nil {
		return err
	}
	if err := fs.Mkdir("/" + dir); err != nil {
		return fmt.Errorf("mkdir /%s: %w", dir, err)
	}
	made[dir] = true
	return nil
}

// ReadPartitions reads the GPT of the image at path.
func ReadPartitions(path string) ([]Partition, error) {
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly), diskfs.WithSectorSize(sectorSize))
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return nil, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	table, ok := pt.(*gpt.Table)
	if !ok {
		return nil, fmt.Errorf("read partition table of %s: not a GPT", path)
	}
	var out []Partition
	for _, p := range table.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		out = append(out, Partition{Index: p.Index, Name: p.Name, Type: strings.ToUpper(string(p.Type)), GUID: strings.ToUpper(p.GUID), Start: p.Start, End: p.End})
	}
	return out, nil
}
