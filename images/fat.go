package images

import (
	"encoding/binary"
	"fmt"
	"io"
)

// go-diskfs v1.9.4 writes FAT32 that Linux mounts but dosfsck (and so a
// careful user, or firmware with a strict FAT driver) rejects. This file
// works around its three defects rather than replacing the library:
//
//  1. Its sectors-per-FAT formula leaves room for the data clusters but not
//     for the two reserved FAT entries, for sizes where 130 × sectors per FAT
//     lands on the sector count minus 31 or 32 (64 MiB is one): dosfsck says
//     "Filesystem has N clusters but only space for N-2 FAT entries".
//     fat32Size shrinks the filesystem by a few sectors until it fits.
//  2. The ".." entry of a directory in the root points at the root's
//     cluster (2); the FAT specification says it must be 0.
//  3. The FSInfo sector's free-cluster count is left "unknown".
//  4. Directory entries carry the time of the build, so two builds of the
//     same inputs differ.
//
// fixFAT32 mends 2 to 4 once the files are written.

// fat32Geometry mirrors go-diskfs's Create: the cluster size by volume
// size (dosfstools' table) and its sectors-per-FAT formula, for 512-byte
// sectors.
func fat32Geometry(size int64) (sectorsPerFAT, clusters int64) {
	const reserved = 32
	var clusterBytes int64
	switch {
	case size <= 260*1000*1000:
		clusterBytes = 512
	case size <= 8*1000*1000*1000:
		clusterBytes = 4096
	case size <= 16*1000*1000*1000:
		clusterBytes = 8192
	case size <= 32*1000*1000*1000:
		clusterBytes = 16384
	default:
		clusterBytes = 32768
	}
	spc := clusterBytes / sectorSize
	total := size / sectorSize
	denom := sectorSize*spc + 8
	sectorsPerFAT = (4*(total-reserved) + denom - 1) / denom
	clusters = (total - reserved - 2*sectorsPerFAT) / spc
	return sectorsPerFAT, clusters
}

// fat32Size returns the largest size not above max (a partition's size)
// for which go-diskfs's FAT holds every cluster plus the two reserved
// entries.
func fat32Size(max int64) int64 {
	size := max - max%sectorSize
	for i := 0; i < 64; i++ {
		spf, clusters := fat32Geometry(size)
		if spf*sectorSize/4 >= clusters+2 {
			return size
		}
		size -= sectorSize
	}
	return size
}

// fatEpochDate is 1980-01-01 in FAT's date format.
const fatEpochDate = 1<<5 | 1

// fixFAT32 mends the ".." entries of the root's subdirectories and fills in
// the FSInfo free-cluster count and next-free hint of the FAT32 filesystem
// at offset in rw.
func fixFAT32(rw interface {
	io.ReaderAt
	io.WriterAt
}, offset int64) error {
	bs := make([]byte, sectorSize)
	if _, err := rw.ReadAt(bs, offset); err != nil {
		return fmt.Errorf("read FAT32 boot sector: %w", err)
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[0x0B:]))
	spc := int64(bs[0x0D])
	reserved := int64(le.Uint16(bs[0x0E:]))
	nFATs := int64(bs[0x10])
	total := int64(le.Uint32(bs[0x20:]))
	fatSectors := int64(le.Uint32(bs[0x24:]))
	rootCluster := le.Uint32(bs[0x2C:])
	fsinfoSector := int64(le.Uint16(bs[0x30:]))
	backupBoot := int64(le.Uint16(bs[0x32:]))
	if bps != sectorSize || spc == 0 || le.Uint16(bs[0x1FE:]) != 0xAA55 {
		return fmt.Errorf("read FAT32 boot sector: not a FAT32 filesystem with 512-byte sectors")
	}
	fat := make([]byte, fatSectors*bps)
	if _, err := rw.ReadAt(fat, offset+reserved*bps); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	entry := func(c uint32) uint32 { return le.Uint32(fat[4*int64(c):]) & 0x0FFFFFFF }
	clusters := (total - reserved - nFATs*fatSectors) / spc
	clusterBytes := spc * bps
	dataStart := offset + (reserved+nFATs*fatSectors)*bps
	clusterOffset := func(c uint32) int64 { return dataStart + int64(c-2)*clusterBytes }

	readChain := func(first uint32) ([]byte, []int64, error) {
		var data []byte
		var offs []int64
		for c, n := first, 0; c >= 2 && c < 0x0FFFFFF8; c, n = entry(c), n+1 {
			if int64(n) > clusters {
				return nil, nil, fmt.Errorf("cluster chain from %d loops", first)
			}
			buf := make([]byte, clusterBytes)
			if _, err := rw.ReadAt(buf, clusterOffset(c)); err != nil {
				return nil, nil, err
			}
			data = append(data, buf...)
			offs = append(offs, clusterOffset(c))
		}
		return data, offs, nil
	}
	// fixDir mends the entries of the directory starting at cluster and
	// recurses into its subdirectories; parentIsRoot says whether its ".."
	// must point at cluster 0.
	var fixDir func(cluster uint32, parentIsRoot bool, depth int) error
	fixDir = func(cluster uint32, parentIsRoot bool, depth int) error {
		if depth > 32 {
			return fmt.Errorf("directories nest too deep")
		}
		dir, offs, err := readChain(cluster)
		if err != nil {
			return fmt.Errorf("read directory: %w", err)
		}
		var subdirs []uint32
		for i := 0; i+32 <= len(dir); i += 32 {
			e := dir[i : i+32]
			if e[0] == 0 {
				break
			}
			attr := e[11]
			if e[0] == 0xE5 || attr == 0x0F {
				continue
			}
			// Fixed timestamps (1980-01-01 00:00, the FAT epoch): two
			// builds of the same inputs give the same bytes.
			for _, off := range []int{13, 14, 15, 18, 19, 22, 23} {
				e[off] = 0
			}
			le.PutUint16(e[16:], fatEpochDate)
			le.PutUint16(e[18:], fatEpochDate)
			le.PutUint16(e[24:], fatEpochDate)
			if attr&0x10 == 0 || attr&0x08 != 0 {
				continue
			}
			sub := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			switch name := string(e[:11]); {
			case name == "..         " && parentIsRoot:
				le.PutUint16(e[20:], 0)
				le.PutUint16(e[26:], 0)
			case e[0] == '.':
			case sub >= 2:
				subdirs = append(subdirs, sub)
			}
		}
		for i, off := range offs {
			if _, err := rw.WriteAt(dir[int64(i)*clusterBytes:int64(i+1)*clusterBytes], off); err != nil {
				return fmt.Errorf("write directory: %w", err)
			}
		}
		for _, sub := range subdirs {
			if err := fixDir(sub, cluster == rootCluster, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := fixDir(rootCluster, false, 0); err != nil {
		return err
	}

	var free, next uint32 = 0, 0xFFFFFFFF
	for c := uint32(2); int64(c) < clusters+2; c++ {
		if entry(c) == 0 {
			free++
			if next == 0xFFFFFFFF {
				next = c
			}
		}
	}
	for _, s := range []int64{fsinfoSector, backupBoot + fsinfoSector} {
		fsi := make([]byte, sectorSize)
		at := offset + s*bps
		if _, err := rw.ReadAt(fsi, at); err != nil {
			return fmt.Errorf("read FSInfo: %w", err)
		}
		if le.Uint32(fsi[0:]) != 0x41615252 || le.Uint32(fsi[0x1E4:]) != 0x61417272 {
			return fmt.Errorf("read FSInfo at sector %d: bad signature", s)
		}
		le.PutUint32(fsi[0x1E8:], free)
		le.PutUint32(fsi[0x1EC:], next)
		if _, err := rw.WriteAt(fsi, at); err != nil {
			return fmt.Errorf("write FSInfo: %w", err)
		}
	}
	return nil
}
