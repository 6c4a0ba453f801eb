package storage

import (
	"bytes"
	"fmt"
	"io"

	"github.com/thinhost/thinhost/images/layout"
)

// blankSpan is how much of a partition's head and tail must be empty
// before hostd calls it blank.
const blankSpan = 1 << 20

// Blank is hostd's verdict on a data partition that holds no ext4.
type Blank struct {
	// OK says hostd may create a filesystem: the partition is one
	// thinhost left empty.
	OK bool
	// Marked says the empty-data marker is there; when OK and not
	// Marked, the partition is all zeros in its first and last MiB and
	// hostd writes the marker before it changes anything.
	Marked bool
	// Why says what the partition holds when it is not blank.
	Why string
	// FirstBoot is the payload of the first-boot secrets record after
	// the marker (layout.FirstBootRecord), FirstBootSpan the bytes the
	// record takes after the marker; nil without one.
	FirstBoot     []byte
	FirstBootSpan int
}

// JudgeBlank reads the head and tail of a data partition of size bytes
// (that Probe found no ext4 on) and says whether hostd may create a
// filesystem there: only where thinhost's marker is present with the rest
// of the first MiB and the last MiB of the extent it records empty, or
// where the first and last MiB are all zeros. Anything else — BitLocker,
// an LVM label, RAID, ext4 whose superblock was damaged, a filesystem
// hostd has no name for — is someone's data.
func JudgeBlank(r io.ReaderAt, size int64) (Blank, error) {
	head := make([]byte, min(size, blankSpan))
	if err := readAt(r, head, 0); err != nil {
		return Blank{}, fmt.Errorf("read the first MiB: %w", err)
	}
	notEmpty := func() Blank {
		if fs := Probe(head); fs != "" {
			return Blank{Why: "holds " + fs}
		}
		return Blank{Why: "holds data hostd has no name for (its first MiB is not empty)"}
	}
	extent, marked := size, false
	var firstBoot []byte
	var firstBootSpan int
	if sectors, ok := layout.ParseDataMarker(head); ok {
		if sectors > uint64(size)/512 {
			return Blank{Why: fmt.Sprintf("holds a thinhost empty-data marker for %d sectors, which does not fit this partition of %d bytes", sectors, size)}, nil
		}
		extent, marked = int64(sectors)*512, true
		clear(head[:layout.DataMarkerSize])
		if payload, span, ok := layout.ParseFirstBoot(head[layout.DataMarkerSize:]); ok {
			firstBoot, firstBootSpan = bytes.Clone(payload), span
			clear(head[layout.DataMarkerSize : layout.DataMarkerSize+span])
		}
	}
	if !allZero(head) {
		return notEmpty(), nil
	}
	tailOff := max(extent-blankSpan, min(int64(len(head)), extent))
	tail := make([]byte, extent-tailOff)
	if err := readAt(r, tail, tailOff); err != nil {
		return Blank{}, fmt.Errorf("read the last MiB: %w", err)
	}
	if !allZero(tail) {
		return Blank{Why: "holds data at its end (its first MiB is empty, its last is not)"}, nil
	}
	return Blank{OK: true, Marked: marked, FirstBoot: firstBoot, FirstBootSpan: firstBootSpan}, nil
}

// readAt fills b from r at off (an empty b reads nothing).
func readAt(r io.ReaderAt, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	_, err := r.ReadAt(b, off)
	return err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
