package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/diskfs/go-diskfs"

	"github.com/thinhost/thinhost/images/layout"
)

// UpdateFile is one file an update of a running host carries from an
// image: a boot file of slot a on its ESP, or its system image.
type UpdateFile struct {
	// Name is what hostd's update stream calls it (api.Update*); Size
	// and SHA256 what it holds.
	Name   string
	Size   int64
	SHA256 string
	// Open reads it.
	Open func() (io.ReadCloser, error)
}

// Update is what an image gives a running host: slot a's description
// and its files.
type Update struct {
	Info  layout.SlotInfo
	Files []UpdateFile
}

// ReadESPFile reads a file from the ESP of the image at path.
func ReadESPFile(path, name string) ([]byte, error) {
	parts, err := ReadPartitions(path)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if p.Name == layout.ESPName {
			return readESPFile(path, p.Index, name)
		}
	}
	return nil, fmt.Errorf("read %s from %s: not a thinhost image (no %s partition)", name, path, layout.ESPName)
}

func readESPFile(path string, index int, name string) ([]byte, error) {
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly), diskfs.WithSectorSize(sectorSize))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fs, err := d.GetFilesystem(index)
	if err != nil {
		return nil, fmt.Errorf("read the ESP of %s: %w", path, err)
	}
	f, err := fs.OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s on the ESP of %s: %w", name, path, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// squashfsMagic starts a squashfs superblock; bytes_used, the image's
// length, is the uint64 at offset 40.
const squashfsMagic = "hsqs"

// ReadUpdate reads an image built by thinhost for updating a host: slot
// a's layout.SlotInfo, kernel, initramfs and microcode from its ESP, and
// the system image from its system partition (as long as its squashfs
// says), each hashed, named as hostd's update stream names them
// (layout.Update*).
func ReadUpdate(path string) (*Update, error) {
	parts, err := ReadPartitions(path)
	if err != nil {
		return nil, err
	}
	var esp, sys *Partition
	for i := range parts {
		switch parts[i].Name {
		case layout.ESPName:
			esp = &parts[i]
		case layout.SystemAName:
			sys = &parts[i]
		}
	}
	if esp == nil || sys == nil {
		return nil, fmt.Errorf("read update from %s: not a thinhost image (no %s and %s partitions)", path, layout.ESPName, layout.SystemAName)
	}
	espFile := func(name string) ([]byte, error) { return readESPFile(path, esp.Index, name) }
	u := &Update{}
	b, err := espFile(layout.SlotInfoPath("a"))
	if err != nil {
		return nil, fmt.Errorf("read update from %s: %w (images built before A/B updates carry no %s: rebuild it)", path, err, layout.SlotInfoPath("a"))
	}
	if err := json.Unmarshal(b, &u.Info); err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", layout.SlotInfoPath("a"), path, err)
	}
	boot := layout.UpdateBootFiles(u.Info, "a")

	// The system image: its superblock says how long it is.
	img, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	sb := make([]byte, 96)
	if _, err := img.ReadAt(sb, int64(sys.Start)*sectorSize); err != nil {
		return nil, fmt.Errorf("read the system image of %s: %w", path, err)
	}
	if string(sb[:4]) != squashfsMagic {
		return nil, fmt.Errorf("read update from %s: %s holds no squashfs", path, layout.SystemAName)
	}
	used := int64(binary.LittleEndian.Uint64(sb[40:]))
	if used <= 0 || used > sys.Size() {
		return nil, fmt.Errorf("read update from %s: the squashfs in %s says it is %d bytes, the partition holds %d", path, layout.SystemAName, used, sys.Size())
	}
	off := int64(sys.Start) * sectorSize
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(img, off, used)); err != nil {
		return nil, fmt.Errorf("hash the system image of %s: %w", path, err)
	}
	u.Files = append(u.Files, UpdateFile{Name: layout.UpdateSystem, Size: used, SHA256: hex.EncodeToString(h.Sum(nil)),
		Open: func() (io.ReadCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{io.NewSectionReader(f, off, used), f}, nil
		}})
	// The boot files go first in the stream: hostd checks a unified
	// kernel image's signature as it lands, before the system image's
	// hundreds of MiB are written for nothing.
	var bootFiles []UpdateFile
	for _, bf := range boot {
		data, err := espFile(bf[1])
		if err != nil {
			return nil, fmt.Errorf("read update from %s: %w", path, err)
		}
		sum := sha256.Sum256(data)
		bootFiles = append(bootFiles, UpdateFile{Name: bf[0], Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
	}
	u.Files = append(bootFiles, u.Files...)
	return u, nil
}
