package flash

import (
	"fmt"
	"sort"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/gpt"
)

// Part is a partition by name and extent, in sectors (inclusive), as
// both the image's and the device's tables describe them.
type Part struct {
	Index      int
	Name       string
	Start, End uint64
}

// KeepLayout checks that a device whose partition table lists dev can
// take an image listing img while keeping its data partition: the same
// partitions, by index and name, each at the same place and of the same
// size, but for the data partition, which must start where the image's
// does and be the last on the device (it may have grown to the device's
// end). It returns the device's data partition, or an error that names
// the first difference.
func KeepLayout(img, dev []Part) (Part, error) {
	byIndex := map[int]Part{}
	for _, p := range dev {
		byIndex[p.Index] = p
	}
	var data Part
	for _, ip := range img {
		dp, ok := byIndex[ip.Index]
		switch {
		case !ok:
			return Part{}, fmt.Errorf("the image has partition %d (%s), the device none", ip.Index, ip.Name)
		case dp.Name != ip.Name:
			return Part{}, fmt.Errorf("partition %d is %q on the device, %q in the image", ip.Index, dp.Name, ip.Name)
		case dp.Start != ip.Start:
			return Part{}, fmt.Errorf("partition %d (%s) starts at sector %d on the device, %d in the image", ip.Index, ip.Name, dp.Start, ip.Start)
		case ip.Name == layout.DataName:
			data = dp
		case dp.End != ip.End:
			return Part{}, fmt.Errorf("partition %d (%s) holds %d sectors on the device, %d in the image", ip.Index, ip.Name, dp.End-dp.Start+1, ip.End-ip.Start+1)
		}
		delete(byIndex, ip.Index)
	}
	if data.Name == "" {
		return Part{}, fmt.Errorf("the image has no %s partition", layout.DataName)
	}
	for _, p := range byIndex {
		return Part{}, fmt.Errorf("the device has partition %d (%s), the image none", p.Index, p.Name)
	}
	for _, p := range dev {
		if p.Index != data.Index && p.End >= data.Start {
			return Part{}, fmt.Errorf("partition %d (%s) lies after the data partition on the device", p.Index, p.Name)
		}
	}
	return data, nil
}

// NewKeepPlan plans rewriting a device that KeepLayout accepted: every
// partition but the data partition gets the image's bytes (read through
// the allocated extents data), with zeros where stale bytes could be
// misread (each partition's first metadataBytes and last MiB); the ESP
// comes last, so an interrupted run leaves the old boot files. The
// partition tables and the data partition are not written at all: no op
// reaches the data partition's first sector.
func NewKeepPlan(size, devSize int64, data []Extent, img []Part, keep Part) (*Plan, error) {
	if size%sector != 0 || devSize%sector != 0 {
		return nil, fmt.Errorf("plan: sizes must be whole sectors (image %d, device %d)", size, devSize)
	}
	limit := int64(keep.Start) * sector
	parts := append([]Part(nil), img...)
	// The ESP last; the others in order.
	sort.SliceStable(parts, func(i, j int) bool {
		return parts[i].Name != layout.ESPName && parts[j].Name == layout.ESPName
	})
	var ops []Op
	for _, p := range parts {
		if p.Name == layout.DataName {
			continue
		}
		ext := Extent{int64(p.Start) * sector, int64(p.End-p.Start+1) * sector}
		if ext.end() > limit || ext.end() > size {
			return nil, fmt.Errorf("plan: partition %s reaches past the data partition or the image", p.Name)
		}
		critical := []Extent{
			{ext.Off, min(ext.Len, metadataBytes)},
			{ext.end() - min(ext.Len, mib), min(ext.Len, mib)},
		}
		var inside []Extent
		for _, d := range merge(data) {
			lo, hi := max(d.Off, ext.Off), min(d.end(), ext.end())
			if lo < hi {
				inside = append(inside, Extent{lo, hi - lo})
			}
		}
		for _, z := range subtract(critical, inside) {
			ops = append(ops, Op{Off: z.Off, Len: z.Len, Kind: Zeros})
		}
		for _, d := range inside {
			ops = append(ops, Op{Off: d.Off, Len: d.Len, Kind: FromImage})
		}
	}
	for _, op := range ops {
		if op.end() > limit {
			return nil, fmt.Errorf("plan: a write at byte %d reaches the data partition at %d", op.Off, limit)
		}
	}
	return newPlan(ops, size, devSize), nil
}

// GPTParts lists a partition table's partitions as Parts.
func GPTParts(t *gpt.Table) []Part {
	var out []Part
	for _, p := range t.Partitions() {
		out = append(out, Part{Index: p.Index, Name: p.Name, Start: p.Start, End: p.End})
	}
	return out
}

func (op Op) end() int64 { return op.Off + op.Len }
