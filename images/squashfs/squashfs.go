// Package squashfs writes squashfs 4.0 filesystems, as the Linux kernel
// reads them, for the host's read-only system image: regular files,
// directories and symbolic links, zstd or LZ4 compression, no
// fragments, no extended attributes, every owner root, one fixed time — so
// the same entries always give the same bytes.
//
// The layout follows the kernel's reader (fs/squashfs) and squashfs-tools'
// format notes: the superblock, the files' data blocks, the inode table,
// the directory table, then the id table with its index, which ends the
// filesystem. Inodes and directories are written children first, so that
// every reference (an inode's position in its metadata block, a
// directory's listing) is known when it is needed: a metadata block's
// start is the compressed size of the blocks before it.
package squashfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Entry is one thing in the filesystem. Exactly one of Src (a regular
// file on disk whose bytes it holds), Target (a symbolic link) or Dir is
// set. Parents that are not listed are made as directories with mode
// 0755.
type Entry struct {
	// Path is absolute and clean ("/usr/bin/qemu-img").
	Path string
	// Mode holds the permission bits (and setuid, setgid, sticky).
	Mode   fs.FileMode
	Src    string
	Target string
	Dir    bool
}

// Options shape the filesystem.
type Options struct {
	// BlockSize is the data block size: a power of two from 4 KiB to
	// 1 MiB; 0 means 128 KiB.
	BlockSize int
	// MTime is every inode's modification time and the filesystem's
	// creation time (seconds since 1970).
	MTime uint32
	// Compression is Zstd (the default) or LZ4.
	Compression Compression
}

// Compression is how blocks are compressed.
type Compression int

const (
	// Zstd packs tighter: the smaller image.
	Zstd Compression = iota
	// LZ4 (high compression) unpacks several times faster for a larger
	// image: the kernel unpacks each block a program reads as it starts
	// (a 128 KiB block for each page it touches first), and where CPU
	// time is what a start waits for (the host's boot under TCG: smbd's
	// 138 libraries), that is the cost that counts. Android's EROFS
	// images use LZ4 for the same reason.
	LZ4
)

// Format constants (squashfs_fs.h).
const (
	magic            = 0x73717368
	metadataSize     = 8192
	compressionZstd  = 6
	compressionLZ4   = 5
	flagCompOpt      = 0x0400
	lz4Legacy        = 1 // the LZ4 format the kernel reads
	lz4HC            = 1 // compression options' flag: high compression
	flagNoXattrs     = 0x0200
	flagNoFragments  = 0x0010
	invalid64        = ^uint64(0)
	invalidFrag      = ^uint32(0)
	uncompressedBit  = 1 << 24
	metaUncompressed = 0x8000
	superblockSize   = 96
	maxDirCount      = 256
	maxNameLen       = 256

	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeLDir    = 8
	typeLFile   = 9
)

type node struct {
	name     string
	entry    Entry
	dir      bool
	children []*node
	inode    uint32 // inode number
	ref      uint64 // inode reference: block start << 16 | offset
	// For regular files, once written: where the data starts and each
	// block's size word.
	start  uint64
	size   uint64
	blocks []uint32
}

// Write writes the filesystem holding entries to w at offset off, padded
// with zeros to a multiple of 4 KiB, and returns its size (the
// superblock's bytes_used). Nothing is written past off+limit; a filesystem that would be larger is an error (limit <= 0:
// no limit).
func Write(w io.WriterAt, off, limit int64, entries []Entry, opt Options) (int64, error) {
	bs := opt.BlockSize
	if bs == 0 {
		bs = 128 << 10
	}
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("squashfs block size %d: want a power of two from 4 KiB to 1 MiB", bs)
	}
	root, err := buildTree(entries)
	if err != nil {
		return 0, err
	}
	if opt.Compression != Zstd && opt.Compression != LZ4 {
		return 0, fmt.Errorf("squashfs compression %d: want Zstd or LZ4", opt.Compression)
	}
	wr := &writer{w: w, off: off, limit: limit, bs: bs, mtime: opt.MTime, comp: opt.Compression}
	wr.inodes.comp, wr.dirs.comp = wr.comp, wr.comp
	// LZ4's options (a metadata block, never compressed) follow the
	// superblock: the kernel refuses an LZ4 filesystem without them.
	var compOpts []byte
	if wr.comp == LZ4 {
		compOpts = binary.LittleEndian.AppendUint16(nil, 8|metaUncompressed)
		compOpts = binary.LittleEndian.AppendUint32(compOpts, lz4Legacy)
		compOpts = binary.LittleEndian.AppendUint32(compOpts, lz4HC)
	}

	// Inode numbers: 1.. in the order the inodes are written (children
	// before their directory), so the root has the last.
	var count uint32
	var number func(n *node)
	number = func(n *node) {
		for _, c := range n.children {
			if c.dir {
				number(c)
			} else {
				count++
				c.inode = count
			}
		}
		count++
		n.inode = count
	}
	number(root)

	// Data first, right after the superblock (and the compression
	// options).
	wr.pos = superblockSize + int64(len(compOpts))
	if err := wr.writeData(root); err != nil {
		return 0, err
	}
	// Inodes and directory listings, children first.
	if err := wr.writeDir(root, count+1); err != nil {
		return 0, err
	}
	inodeTable, err := wr.inodes.finish()
	if err != nil {
		return 0, err
	}
	dirTable, err := wr.dirs.finish()
	if err != nil {
		return 0, err
	}
	inodeStart := wr.pos
	if err := wr.put(inodeTable); err != nil {
		return 0, err
	}
	dirStart := wr.pos
	if err := wr.put(dirTable); err != nil {
		return 0, err
	}
	// The id table: one id (0, root), one metadata block, its index.
	ids := metadata{comp: wr.comp}
	ids.add([]byte{0, 0, 0, 0})
	idBlock, err := ids.finish()
	if err != nil {
		return 0, err
	}
	idBlockStart := wr.pos
	if err := wr.put(idBlock); err != nil {
		return 0, err
	}
	idIndexStart := wr.pos
	if err := wr.put(binary.LittleEndian.AppendUint64(nil, uint64(idBlockStart))); err != nil {
		return 0, err
	}
	used := wr.pos
	// Padded to 4 KiB, as mksquashfs does: a device (a loop device over
	// an image file) ends on a whole sector.
	if pad := (4096 - used%4096) % 4096; pad > 0 {
		if err := wr.put(make([]byte, pad)); err != nil {
			return 0, err
		}
	}

	sb := make([]byte, 0, superblockSize)
	le32 := func(v uint32) { sb = binary.LittleEndian.AppendUint32(sb, v) }
	le16 := func(v uint16) { sb = binary.LittleEndian.AppendUint16(sb, v) }
	le64 := func(v uint64) { sb = binary.LittleEndian.AppendUint64(sb, v) }
	le32(magic)
	le32(count)
	le32(opt.MTime)
	le32(uint32(bs))
	le32(0) // fragments
	flags := uint16(flagNoXattrs | flagNoFragments)
	if wr.comp == LZ4 {
		le16(compressionLZ4)
		flags |= flagCompOpt
	} else {
		le16(compressionZstd)
	}
	le16(uint16(log2(bs)))
	le16(flags)
	le16(1) // ids
	le16(4)
	le16(0)
	le64(root.ref)
	le64(uint64(used))
	le64(uint64(idIndexStart))
	le64(invalid64) // xattr id table
	le64(uint64(inodeStart))
	le64(uint64(dirStart))
	le64(invalid64) // fragment table
	le64(invalid64) // export table
	wr.pos = 0
	if err := wr.put(append(sb, compOpts...)); err != nil {
		return 0, err
	}
	return used, nil
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// buildTree makes the directory tree of entries, children sorted by name
// as the kernel's lookup expects.
func buildTree(entries []Entry) (*node, error) {
	root := &node{dir: true, entry: Entry{Path: "/", Mode: 0o755, Dir: true}}
	byPath := map[string]*node{"/": root}
	var dirOf func(p string) (*node, error)
	dirOf = func(p string) (*node, error) {
		if n, ok := byPath[p]; ok {
			if !n.dir {
				return nil, fmt.Errorf("squashfs: %s is a file and a directory", p)
			}
			return n, nil
		}
		parent, err := dirOf(path.Dir(p))
		if err != nil {
			return nil, err
		}
		n := &node{name: path.Base(p), dir: true, entry: Entry{Path: p, Mode: 0o755, Dir: true}}
		parent.children = append(parent.children, n)
		byPath[p] = n
		return n, nil
	}
	for _, e := range entries {
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path {
			return nil, fmt.Errorf("squashfs: path %q must be absolute and clean", e.Path)
		}
		kinds := 0
		for _, set := range []bool{e.Src != "", e.Target != "", e.Dir} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return nil, fmt.Errorf("squashfs: %s must be exactly one of a file, a link or a directory", e.Path)
		}
		if len(e.Target) >= 4096 {
			return nil, fmt.Errorf("squashfs: link %s: its target is longer than the kernel's 4095 bytes", e.Path)
		}
		if len(path.Base(e.Path)) > maxNameLen {
			return nil, fmt.Errorf("squashfs: name %q is longer than %d bytes", path.Base(e.Path), maxNameLen)
		}
		if e.Path == "/" {
			if !e.Dir {
				return nil, errors.New("squashfs: / must be a directory")
			}
			root.entry.Mode = e.Mode
			continue
		}
		if e.Dir {
			n, err := dirOf(e.Path)
			if err != nil {
				return nil, err
			}
			n.entry.Mode = e.Mode
			continue
		}
		if _, dup := byPath[e.Path]; dup {
			return nil, fmt.Errorf("squashfs: %s is listed twice", e.Path)
		}
		parent, err := dirOf(path.Dir(e.Path))
		if err != nil {
			return nil, err
		}
		if e.Target != "" {
			e.Mode = 0o777 // as Linux reports every symbolic link
		}
		n := &node{name: path.Base(e.Path), entry: e}
		parent.children = append(parent.children, n)
		byPath[e.Path] = n
	}
	var sortAll func(n *node)
	sortAll = func(n *node) {
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
		for _, c := range n.children {
			if c.dir {
				sortAll(c)
			}
		}
	}
	sortAll(root)
	return root, nil
}

type writer struct {
	w          io.WriterAt
	off, limit int64
	pos        int64
	bs         int
	mtime      uint32
	comp       Compression
	inodes     metadata
	dirs       metadata
}

func (wr *writer) put(b []byte) error {
	if wr.limit > 0 && wr.pos+int64(len(b)) > wr.limit {
		return fmt.Errorf("squashfs: the filesystem needs more than the %d bytes it may take", wr.limit)
	}
	if _, err := wr.w.WriteAt(b, wr.off+wr.pos); err != nil {
		return fmt.Errorf("write squashfs: %w", err)
	}
	wr.pos += int64(len(b))
	return nil
}

// block is one data block on its way through writeData: read in file
// order, compressed by any worker, written in file order.
type block struct {
	n    *node
	data []byte
	word uint32 // the size word, once compressed
	out  []byte
	err  error
	done chan struct{}
}

// writeData writes every regular file's blocks, in tree order, with the
// compression spread over the machine's CPUs: what is written, and where,
// does not depend on how many there are.
func (wr *writer) writeData(root *node) error {
	var files []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			switch {
			case c.dir:
				walk(c)
			case c.entry.Src != "":
				files = append(files, c)
			}
		}
	}
	walk(root)
	files, dups, err := dedupe(files)
	if err != nil {
		return err
	}

	workers := runtime.GOMAXPROCS(0)
	queue := make(chan *block, 4*workers) // in order, for the writer
	work := make(chan *block, 4*workers)  // for the compressors
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				b.word, b.out, b.err = compressBlock(wr.comp, b.data)
				close(b.done)
			}
		}()
	}
	// The writer: each file's blocks after the previous file's.
	written := make(chan error, 1)
	var failed atomic.Bool // tells the reader to stop
	go func() {
		var err error
		for b := range queue {
			<-b.done
			if err != nil {
				continue // drain
			}
			if b.err != nil {
				err = b.err
				failed.Store(true)
				continue
			}
			if len(b.n.blocks) == 0 && b.n.size == 0 {
				b.n.start = uint64(wr.pos)
			}
			if err = wr.put(b.out); err == nil {
				b.n.blocks = append(b.n.blocks, b.word)
				b.n.size += uint64(len(b.data))
			} else {
				failed.Store(true)
			}
		}
		written <- err
	}()
	readErr := wr.readFiles(files, queue, work, failed.Load)
	close(work)
	close(queue)
	wg.Wait()
	if err := <-written; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	for _, n := range files {
		if len(n.blocks) == 0 {
			n.start = uint64(wr.pos) // empty: no block, any start
		}
	}
	for n, orig := range dups {
		n.start, n.size, n.blocks = orig.start, orig.size, orig.blocks
	}
	return nil
}

// dedupe finds files with the same bytes (Mesa's drivers are one file
// under many names): only the first of each is read and written, the
// others' inodes point at its blocks, as mksquashfs does. Files are
// compared by size, then by SHA-256 when sizes match.
func dedupe(files []*node) (unique []*node, dups map[*node]*node, err error) {
	bySize := map[int64][]*node{}
	for _, n := range files {
		st, err := os.Stat(n.entry.Src)
		if err != nil {
			return nil, nil, fmt.Errorf("squashfs: open %s for %s: %w", n.entry.Src, n.entry.Path, err)
		}
		if st.Size() > 0 {
			bySize[st.Size()] = append(bySize[st.Size()], n)
		}
	}
	dups = map[*node]*node{}
	for _, group := range bySize {
		if len(group) < 2 {
			continue
		}
		first := map[[sha256.Size]byte]*node{}
		for _, n := range group {
			sum, err := fileSum(n.entry.Src)
			if err != nil {
				return nil, nil, fmt.Errorf("squashfs: read %s: %w", n.entry.Src, err)
			}
			if orig, ok := first[sum]; ok {
				dups[n] = orig
			} else {
				first[sum] = n
			}
		}
	}
	for _, n := range files {
		if dups[n] == nil {
			unique = append(unique, n)
		}
	}
	return unique, dups, nil
}

func fileSum(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// readFiles reads every file's blocks in order onto queue and work.
func (wr *writer) readFiles(files []*node, queue, work chan<- *block, stop func() bool) error {
	for _, n := range files {
		if stop() {
			return nil // the writer failed and says why
		}
		f, err := os.Open(n.entry.Src)
		if err != nil {
			return fmt.Errorf("squashfs: open %s for %s: %w", n.entry.Src, n.entry.Path, err)
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("squashfs: %s (for %s) is not a regular file", n.entry.Src, n.entry.Path)
		}
		var size int64
		for {
			buf := make([]byte, wr.bs)
			k, err := io.ReadFull(f, buf)
			if k > 0 {
				b := &block{n: n, data: buf[:k], done: make(chan struct{})}
				queue <- b
				work <- b
				size += int64(k)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("squashfs: read %s: %w", n.entry.Src, err)
			}
		}
		f.Close()
		if size != st.Size() {
			return fmt.Errorf("squashfs: %s changed while it was read", n.entry.Src)
		}
	}
	return nil
}

// compressBlock returns a data block as stored and its size word:
// compressed with c when that is smaller, else the bytes themselves with
// the uncompressed bit.
func compressBlock(c Compression, b []byte) (uint32, []byte, error) {
	z, err := compress(c, b)
	if err != nil {
		return 0, nil, err
	}
	if len(z) < len(b) {
		return uint32(len(z)), z, nil
	}
	return uint32(len(b)) | uncompressedBit, b, nil
}

// compress compresses b with c; the result may be larger than b.
func compress(c Compression, b []byte) ([]byte, error) {
	if c == LZ4 {
		// A raw LZ4 block, as the kernel's LZ4_decompress_safe reads it
		// (with room for the worst case, so it never fails for lack of
		// it; compressBlock keeps the smaller of the two).
		out := make([]byte, lz4.CompressBlockBound(len(b)))
		hc := lz4Compressors.Get().(*lz4.CompressorHC)
		n, err := hc.CompressBlock(b, out)
		lz4Compressors.Put(hc)
		if err != nil {
			return nil, err
		}
		return out[:n], nil
	}
	enc, err := encoder()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(b, nil), nil
}

// lz4Compressors are the workers' LZ4 compressors (each holds its tables):
// the search depth of level 1, whose image was 0.2% larger than level 9's
// and written in 7-8 s instead of 18 s (the test image's build, warm).
var lz4Compressors = sync.Pool{New: func() any { return &lz4.CompressorHC{Level: lz4.Level1} }}

// encoder is the zstd encoder of every block, data and metadata, safe for
// the compressing workers to share (EncodeAll). zstd, not zlib, because
// the host reads its programs' libraries from this filesystem as they
// start, and the kernel unpacks zstd faster for the same size: on the
// test host under TCG, with the page cache dropped, reading the system
// image's 186 libraries took 2.0-2.2 s instead of 4.5-4.9 s, and smbd's
// start 0.55 s instead of 0.74-1.17 s. Each block is one frame of one
// segment: its window is the block itself, within what the kernel's
// reader allows (a window up to the block size), and without a
// checksum, which the kernel would only spend time on.
var encoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	// As many encoders as the compressing workers (EncodeAll takes one).
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithZeroFrames(true))
})

// header is an inode's common part.
func (wr *writer) header(typ uint16, n *node) []byte {
	b := make([]byte, 0, 64)
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(unixMode(n.entry.Mode)))
	b = binary.LittleEndian.AppendUint16(b, 0) // uid index
	b = binary.LittleEndian.AppendUint16(b, 0) // gid index
	b = binary.LittleEndian.AppendUint32(b, wr.mtime)
	return binary.LittleEndian.AppendUint32(b, n.inode)
}

// unixMode is the permission bits of m in Unix's encoding.
func unixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// writeDir writes n's children's inodes (directories recursively), then
// n's listing, then n's own inode.
func (wr *writer) writeDir(n *node, parent uint32) error {
	subdirs := 0
	for _, c := range n.children {
		if c.dir {
			subdirs++
			if err := wr.writeDir(c, n.inode); err != nil {
				return err
			}
			continue
		}
		c.ref = wr.inodes.ref()
		var b []byte
		if c.entry.Target != "" {
			b = wr.header(typeSymlink, c)
			b = binary.LittleEndian.AppendUint32(b, 1)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(c.entry.Target)))
			b = append(b, c.entry.Target...)
		} else {
			b = wr.header(typeLFile, c)
			b = binary.LittleEndian.AppendUint64(b, c.start)
			b = binary.LittleEndian.AppendUint64(b, c.size)
			b = binary.LittleEndian.AppendUint64(b, 0) // sparse bytes
			b = binary.LittleEndian.AppendUint32(b, 1) // links
			b = binary.LittleEndian.AppendUint32(b, invalidFrag)
			b = binary.LittleEndian.AppendUint32(b, 0)           // fragment offset
			b = binary.LittleEndian.AppendUint32(b, invalidFrag) // no xattrs
			for _, w := range c.blocks {
				b = binary.LittleEndian.AppendUint32(b, w)
			}
		}
		wr.inodes.add(b)
	}

	// The listing: runs of entries under one header, a new header where
	// the inodes' metadata block changes, after 256 entries, or where an
	// inode number is out of a header's 16-bit reach.
	listStart, listOffset := wr.dirs.pos()
	var listing []byte
	for i := 0; i < len(n.children); {
		first := n.children[i]
		block := uint32(first.ref >> 16)
		j := i
		for j < len(n.children) && j-i < maxDirCount {
			c := n.children[j]
			delta := int64(c.inode) - int64(first.inode)
			if uint32(c.ref>>16) != block || delta < -32768 || delta > 32767 {
				break
			}
			j++
		}
		listing = binary.LittleEndian.AppendUint32(listing, uint32(j-i-1))
		listing = binary.LittleEndian.AppendUint32(listing, block)
		listing = binary.LittleEndian.AppendUint32(listing, first.inode)
		for _, c := range n.children[i:j] {
			typ := uint16(typeFile)
			switch {
			case c.dir:
				typ = typeDir
			case c.entry.Target != "":
				typ = typeSymlink
			}
			listing = binary.LittleEndian.AppendUint16(listing, uint16(c.ref&0xffff))
			listing = binary.LittleEndian.AppendUint16(listing, uint16(int16(int64(c.inode)-int64(first.inode))))
			listing = binary.LittleEndian.AppendUint16(listing, typ)
			listing = binary.LittleEndian.AppendUint16(listing, uint16(len(c.name)-1))
			listing = append(listing, c.name...)
		}
		i = j
	}
	wr.dirs.add(listing)
	size := uint64(len(listing)) + 3 // the kernel counts "." and ".."

	n.ref = wr.inodes.ref()
	var b []byte
	if size < 1<<16 {
		b = wr.header(typeDir, n)
		b = binary.LittleEndian.AppendUint32(b, listStart)
		b = binary.LittleEndian.AppendUint32(b, uint32(2+subdirs))
		b = binary.LittleEndian.AppendUint16(b, uint16(size))
		b = binary.LittleEndian.AppendUint16(b, listOffset)
		b = binary.LittleEndian.AppendUint32(b, parent)
	} else {
		b = wr.header(typeLDir, n)
		b = binary.LittleEndian.AppendUint32(b, uint32(2+subdirs))
		b = binary.LittleEndian.AppendUint32(b, uint32(size))
		b = binary.LittleEndian.AppendUint32(b, listStart)
		b = binary.LittleEndian.AppendUint32(b, parent)
		b = binary.LittleEndian.AppendUint16(b, 0) // no index
		b = binary.LittleEndian.AppendUint16(b, listOffset)
		b = binary.LittleEndian.AppendUint32(b, invalidFrag) // no xattrs
	}
	wr.inodes.add(b)
	return nil
}

// metadata is a table of metadata blocks (8 KiB before compression, each
// behind a 2-byte length word), made as bytes are added: done holds the
// finished blocks, cur the one being filled.
type metadata struct {
	comp Compression
	done bytes.Buffer
	cur  []byte
	err  error
}

// pos is where the next byte goes: the start of its block in the table
// and its offset in the block.
func (m *metadata) pos() (uint32, uint16) {
	return uint32(m.done.Len()), uint16(len(m.cur))
}

// ref is pos as an inode reference.
func (m *metadata) ref() uint64 {
	start, off := m.pos()
	return uint64(start)<<16 | uint64(off)
}

func (m *metadata) add(b []byte) {
	for len(b) > 0 {
		k := min(metadataSize-len(m.cur), len(b))
		m.cur = append(m.cur, b[:k]...)
		b = b[k:]
		if len(m.cur) == metadataSize {
			m.flush()
		}
	}
}

func (m *metadata) flush() {
	if len(m.cur) == 0 || m.err != nil {
		return
	}
	z, err := compress(m.comp, m.cur)
	if err != nil {
		m.err = err
		return
	}
	if len(z) < len(m.cur) {
		m.done.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(z))))
		m.done.Write(z)
	} else {
		m.done.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(m.cur))|metaUncompressed))
		m.done.Write(m.cur)
	}
	m.cur = m.cur[:0]
}

// finish flushes the last block and returns the table.
func (m *metadata) finish() ([]byte, error) {
	m.flush()
	if m.err != nil {
		return nil, fmt.Errorf("compress squashfs metadata: %w", m.err)
	}
	return m.done.Bytes(), nil
}
