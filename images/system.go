package images

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
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

// squashfsBlock is the squashfs block size: go-diskfs needs at least 4096
// when the filesystem is created directly on a partition.
const squashfsBlock = 128 << 10

// epoch is the time stamped on every file, so two builds of the same
// inputs give the same bytes.
var epoch = time.Unix(0, 0)

// writeSystem writes a squashfs holding files into partition p of d, and
// returns the manifest of what it holds.
func writeSystem(d *disk.Disk, p Partition, files []SystemFile) ([]ManifestEntry, error) {
	fs, err := squashfs.Create(d.Backend, p.Size(), int64(p.Start)*sectorSize, squashfsBlock)
	if err != nil {
		return nil, fmt.Errorf("create squashfs: %w", err)
	}
	sorted := append([]SystemFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Dst < sorted[j].Dst })
	ws := fs.Workspace()
	made := map[string]bool{}
	var manifest []ManifestEntry
	for _, f := range sorted {
		if !path.IsAbs(f.Dst) || path.Clean(f.Dst) != f.Dst {
			return nil, fmt.Errorf("system file %q: the path in the image must be absolute and clean", f.Dst)
		}
		if err := mkdirAllSquash(fs, path.Dir(f.Dst), made); err != nil {
			return nil, err
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
		rel := strings.TrimPrefix(f.Dst, "/") // go-diskfs's squashfs takes relative paths
		out, err := fs.OpenFile(rel, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("create %s in the system image: %w", f.Dst, err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, h), in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("write %s to the system image: %w", f.Dst, err)
		}
		if err := fs.Chmod(rel, st.Mode().Perm()); err != nil {
			return nil, fmt.Errorf("chmod %s in the system image: %w", f.Dst, err)
		}
		manifest = append(manifest, ManifestEntry{Path: f.Dst, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
			Source: f.Src, Package: f.Package, Version: f.Version})
	}
	// The root directory is the workspace go-diskfs made with
	// os.MkdirTemp (0700): open it to all, as the directories under it
	// are, so the host's unprivileged services can reach /system.
	if err := os.Chmod(ws, 0o755); err != nil {
		return nil, fmt.Errorf("chmod the system image's root: %w", err)
	}
	// Fixed times on everything in the workspace, which Finalize reads.
	err = filepath.Walk(ws, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, epoch, epoch)
	})
	if err != nil {
		return nil, fmt.Errorf("stamp the system image's times: %w", err)
	}
	// gzip: the kernel's xz decoder takes only CRC32 checks, and the xz
	// writer go-diskfs uses writes CRC64 (the mount fails with EIO).
	if err := fs.Finalize(squashfs.FinalizeOptions{Compression: &squashfs.CompressorGzip{}}); err != nil {
		return nil, fmt.Errorf("finalize squashfs: %w", err)
	}
	// The superblock's creation time (bytes 8-11) is the build's; fix it.
	w, err := d.Backend.Writable()
	if err != nil {
		return nil, err
	}
	var zero [4]byte
	binary.LittleEndian.PutUint32(zero[:], uint32(epoch.Unix()))
	if _, err := w.WriteAt(zero[:], int64(p.Start)*sectorSize+8); err != nil {
		return nil, fmt.Errorf("stamp the squashfs superblock: %w", err)
	}
	return manifest, nil
}

func mkdirAllSquash(fs *squashfs.FileSystem, dir string, made map[string]bool) error {
	if dir == "/" || made[dir] {
		return nil
	}
	if err := mkdirAllSquash(fs, path.Dir(dir), made); err != nil {
		return err
	}
	if err := fs.Mkdir(strings.TrimPrefix(dir, "/")); err != nil {
		return fmt.Errorf("mkdir %s in the system image: %w", dir, err)
	}
	made[dir] = true
	return nil
}
