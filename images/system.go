package images

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/diskfs/go-diskfs/disk"

	"github.com/thinhost/thinhost/images/squashfs"
)

// SystemFile is one file of the read-only system image: Src on the build
// machine (a regular file), Dst its absolute path in the image.
type SystemFile struct {
	Src, Dst string
	// Package and Version name the Debian package Src came from, when
	// known.
	Package, Version string
}

// ManifestEntry records one file of the system image.
type ManifestEntry struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Source  string `json:"source"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
}

// writeSystem writes a squashfs holding files into partition p of d, and
// returns the manifest of what it holds. Every file gets one fixed time
// (1970-01-01), so two builds of the same inputs give the same bytes.
func writeSystem(d *disk.Disk, p Partition, files []SystemFile) ([]ManifestEntry, error) {
	sorted := append([]SystemFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Dst < sorted[j].Dst })
	var manifest []ManifestEntry
	var entries []squashfs.Entry
	for _, f := range sorted {
		if !path.IsAbs(f.Dst) || path.Clean(f.Dst) != f.Dst {
			return nil, fmt.Errorf("system file %q: the path in the image must be absolute and clean", f.Dst)
		}
		in, err := os.Open(f.Src)
		if err != nil {
			return nil, fmt.Errorf("open %s for the system image: %w", f.Src, err)
		}
		st, err := in.Stat()
		if err != nil || !st.Mode().IsRegular() {
			in.Close()
			return nil, fmt.Errorf("system file %s: not a regular file", f.Src)
		}
		h := sha256.New()
		n, err := io.Copy(h, in)
		in.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s for the system image: %w", f.Src, err)
		}
		entries = append(entries, squashfs.Entry{Path: f.Dst, Src: f.Src, Mode: st.Mode().Perm()})
		manifest = append(manifest, ManifestEntry{Path: f.Dst, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
			Source: f.Src, Package: f.Package, Version: f.Version})
	}
	w, err := d.Backend.Writable()
	if err != nil {
		return nil, err
	}
	// LZ4, not zstd: the host's boot waits for smbd, which maps Samba's
	// 138 libraries as it starts, and the kernel unpacks each block it
	// touches. Under TCG smbd's start took 1.4-1.5 s of CPU instead of
	// 2.0-2.1 s, for a system image of 87.5 MiB instead of 71.9 MiB (on
	// this machine natively, reading every library took 0.12-0.14 s of
	// CPU instead of 0.2-0.26 s). From a USB 2 stick the larger image
	// reads a little slower; from USB 3 or NVMe the two are even.
	if _, err := squashfs.Write(w, int64(p.Start)*sectorSize, p.Size(), entries, squashfs.Options{Compression: squashfs.LZ4}); err != nil {
		return nil, fmt.Errorf("%w: raise storage.system_size", err)
	}
	return manifest, nil
}
