package flash

import (
	"fmt"
	"io"
	"sort"

	"github.com/thinhost/thinhost/internal/gpt"
)

const (
	sector = 512
	mib    = 1 << 20
	// metadataBytes is how much of each partition's start is zeroed where
	// the image has holes: superblocks, FATs and their like live there, and
	// an old filesystem's signature must never survive under a new one.
	metadataBytes = 8 * mib
)

// Extent is a byte range.
type Extent struct{ Off, Len int64 }

func (e Extent) end() int64 { return e.Off + e.Len }

// Op is one write: Len bytes at Off on the target, taken from the image at
// the same offset, or zeros, or Data.
type Op struct {
	Off, Len int64
	Kind     OpKind
	Data     []byte
	// Transient ops are overwritten by a later op (the boot sectors are
	// zeroed first and written last); Verify skips them.
	Transient bool
}

// OpKind says where an Op's bytes come from.
type OpKind int

const (
	FromImage OpKind = iota
	Zeros
	Bytes
)

// Plan is every write, in the order they are made. The boot sectors (the
// protective MBR and the primary GPT header) come last: an interrupted
// flash leaves the device with zeroed ones, so no firmware takes it for a
// bootable disk.
type Plan struct {
	Ops []Op
	// ImageBytes, ZeroBytes and TotalBytes are what the ops write;
	// VerifyBytes what Verify reads back.
	ImageBytes, ZeroBytes, TotalBytes, VerifyBytes int64
	ImageSize, DeviceSize                          int64
}

// NewPlan plans writing the image (read through r, size bytes, with the
// given allocated extents and partition extents) onto a device of devSize
// bytes.
func NewPlan(r io.ReaderAt, size, devSize int64, data, partitions []Extent) (*Plan, error) {
	if size%sector != 0 || devSize%sector != 0 {
		return nil, fmt.Errorf("plan: sizes must be whole sectors (image %d, device %d)", size, devSize)
	}
	if devSize < size {
		return nil, fmt.Errorf("plan: the device (%d bytes) is smaller than the image (%d)", devSize, size)
	}
	table, err := gpt.Read(r, size/sector)
	if err != nil {
		return nil, fmt.Errorf("read the image's partition table: %w (is it a thinhost image?)", err)
	}
	table.Resize(devSize / sector)
	newMBR, primary, backup := table.MBR, table.PrimaryHeader(), table.Backup()

	// Regions where stale bytes could be misread: the partition table area
	// (the first MiB), each partition's first metadataBytes and last MiB,
	// and the last MiB of the device (old backup GPTs, RAID superblocks).
	critical := []Extent{{0, min(mib, size)}}
	for _, p := range partitions {
		critical = append(critical, Extent{p.Off, min(p.Len, metadataBytes)})
		// And its last MiB: RAID 1.0 superblocks live there, and hostd
		// formats the data partition only when the last MiB of its
		// extent (in the image) reads empty.
		tail := min(p.Len, mib)
		critical = append(critical, Extent{p.Off + p.Len - tail, tail})
	}
	tail := Extent{devSize - mib, mib}
	if tail.Off < 0 {
		tail = Extent{0, devSize}
	}

	boot := Extent{0, 2 * sector}
	backupOff := gpt.BackupOffset(devSize / sector)
	// 1. Zero the boot sectors (written for real at the very end) and the
	// holes of the critical regions inside the image.
	ops := []Op{{Off: boot.Off, Len: boot.Len, Kind: Zeros, Transient: true}}
	for _, z := range subtract(merge(critical), append([]Extent{boot}, data...)) {
		ops = append(ops, Op{Off: z.Off, Len: z.Len, Kind: Zeros})
	}
	// 2. The image's data, without the boot sectors and without the
	// image's own backup GPT when it moves.
	skip := []Extent{boot}
	imageBackup := Extent{gpt.BackupOffset(size / sector), (gpt.EntrySectors + 1) * sector}
	if devSize != size {
		skip = append(skip, imageBackup)
	}
	for _, d := range subtract(merge(data), skip) {
		if d.Off >= size {
			continue
		}
		if d.end() > size {
			d.Len = size - d.Off
		}
		ops = append(ops, Op{Off: d.Off, Len: d.Len, Kind: FromImage})
	}
	// 3. The device's last MiB (zeros), then the backup GPT at its end.
	if devSize != size {
		for _, z := range subtract([]Extent{tail}, []Extent{{0, size}}) {
			if z.end() > backupOff {
				z.Len = backupOff - z.Off
			}
			if z.Len > 0 {
				ops = append(ops, Op{Off: z.Off, Len: z.Len, Kind: Zeros})
			}
		}
	}
	ops = append(ops, Op{Off: backupOff, Len: int64(len(backup)), Kind: Bytes, Data: backup})
	// 4. The boot sectors, last.
	ops = append(ops, Op{Off: 0, Len: 2 * sector, Kind: Bytes, Data: append(newMBR, primary...)})

	return newPlan(ops, size, devSize), nil
}

// newPlan is a plan of ops with their totals.
func newPlan(ops []Op, size, devSize int64) *Plan {
	p := &Plan{Ops: ops, ImageSize: size, DeviceSize: devSize}
	for _, op := range ops {
		switch op.Kind {
		case FromImage:
			p.ImageBytes += op.Len
		case Zeros:
			p.ZeroBytes += op.Len
		}
		p.TotalBytes += op.Len
		if !op.Transient {
			p.VerifyBytes += op.Len
		}
	}
	return p
}

// merge sorts extents and joins overlapping or touching ones.
func merge(in []Extent) []Extent {
	xs := append([]Extent(nil), in...)
	sort.Slice(xs, func(i, j int) bool { return xs[i].Off < xs[j].Off })
	var out []Extent
	for _, x := range xs {
		if x.Len <= 0 {
			continue
		}
		if n := len(out); n > 0 && x.Off <= out[n-1].end() {
			if x.end() > out[n-1].end() {
				out[n-1].Len = x.end() - out[n-1].Off
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// subtract returns the parts of a not covered by b.
func subtract(a, b []Extent) []Extent {
	b = merge(b)
	var out []Extent
	for _, x := range merge(a) {
		cur := x.Off
		for _, y := range b {
			if y.end() <= cur || y.Off >= x.end() {
				continue
			}
			if y.Off > cur {
				out = append(out, Extent{cur, y.Off - cur})
			}
			cur = max(cur, y.end())
		}
		if cur < x.end() {
			out = append(out, Extent{cur, x.end() - cur})
		}
	}
	return out
}

var zeroChunk = make([]byte, 4*mib)

// expected fills buf with what op should hold at op.Off+delta.
func (op Op) expected(image io.ReaderAt, delta int64, buf []byte) error {
	switch op.Kind {
	case FromImage:
		_, err := image.ReadAt(buf, op.Off+delta)
		return err
	case Zeros:
		copy(buf, zeroChunk)
	case Bytes:
		copy(buf, op.Data[delta:])
	}
	return nil
}

// splitBoot splits the plan into everything but its final boot-sector
// write, and that write (nil when the plan writes no boot sectors, as a
// keep-data plan does not).
func (p *Plan) splitBoot() (body, boot *Plan) {
	n := len(p.Ops)
	if n == 0 || p.Ops[n-1].Off != 0 || p.Ops[n-1].Kind != Bytes {
		return p, nil
	}
	return newPlan(p.Ops[:n-1], p.ImageSize, p.DeviceSize), newPlan(p.Ops[n-1:], p.ImageSize, p.DeviceSize)
}
