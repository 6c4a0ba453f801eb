package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/internal/units"
)

// ErrInterrupted means the write was stopped; the device is not bootable.
var ErrInterrupted = errors.New("interrupted")

// syncEvery bounds the data in the page cache between syncs, so progress
// reports what reached the device, not what was queued.
const syncEvery = 64 * mib

// DataExtents lists the allocated ranges of f (SEEK_DATA/SEEK_HOLE); on a
// filesystem without hole support the whole file is one extent.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	var out []Extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{0, size}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("find data in %s: %w", f.Name(), err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("find holes in %s: %w", f.Name(), err)
		}
		hole = min(hole, size)
		// Whole sectors: a device is written in sectors.
		start := data / sector * sector
		end := (hole + sector - 1) / sector * sector
		out = append(out, Extent{start, min(end, size) - start})
		off = hole
	}
	return merge(out), nil
}

// Progress receives the bytes done out of the total of a phase.
type Progress func(done, total int64)

// Write carries out plan on target (opened for writing by the caller; a
// block device should be opened with O_EXCL), reading the image from img.
// It syncs every syncEvery bytes and at the end. Cancelling ctx stops it
// between chunks with ErrInterrupted.
func Write(ctx context.Context, plan *Plan, img io.ReaderAt, target *os.File, progress Progress) (err error) {
	// Every way out syncs what was written: an error or an interrupt
	// leaves the device in the state the message describes.
	defer func() {
		if err != nil {
			_ = target.Sync()
		}
	}()
	buf := make([]byte, 4*mib)
	var done, sinceSync int64
	for _, op := range plan.Ops {
		for off := int64(0); off < op.Len; {
			if ctx.Err() != nil {
				return fmt.Errorf("write %s: %w after %s of %s; the device is not bootable: flash it again", target.Name(), ErrInterrupted, units.Bytes(done), units.Bytes(plan.TotalBytes))
			}
			n := min(int64(len(buf)), op.Len-off)
			chunk := buf[:n]
			if err := op.expected(img, off, chunk); err != nil {
				return fmt.Errorf("read the image at %d: %w", op.Off+off, err)
			}
			if _, err := target.WriteAt(chunk, op.Off+off); err != nil {
				return fmt.Errorf("write %s at offset %d: %w", target.Name(), op.Off+off, err)
			}
			off += n
			done += n
			sinceSync += n
			if sinceSync >= syncEvery {
				if err := unix.Fdatasync(int(target.Fd())); err != nil {
					return fmt.Errorf("sync %s: %w (the device failed to store what was written)", target.Name(), err)
				}
				sinceSync = 0
			}
			if progress != nil {
				progress(done, plan.TotalBytes)
			}
		}
	}
	if err := unix.Fsync(int(target.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w (the device failed to store what was written)", target.Name(), err)
	}
	return nil
}

// MismatchError reports the first byte that differs after writing.
type MismatchError struct {
	Device string
	Offset int64
	Want   byte
	Got    byte
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("verify %s: byte at offset %d (0x%x) is 0x%02x, the image has 0x%02x: the device does not hold the image (a failing or fake-capacity stick?)",
		e.Device, e.Offset, e.Offset, e.Got, e.Want)
}

// Verify reads back everything plan wrote and compares it, bypassing the
// page cache so the device itself answers.
func Verify(ctx context.Context, plan *Plan, img io.ReaderAt, target *os.File, progress Progress) error {
	fd := int(target.Fd())
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	_ = unix.IoctlSetInt(fd, unix.BLKFLSBUF, 0)
	want := make([]byte, 4*mib)
	got := make([]byte, 4*mib)
	var done int64
	for _, op := range plan.Ops {
		if op.Transient {
			continue
		}
		for off := int64(0); off < op.Len; {
			if ctx.Err() != nil {
				return fmt.Errorf("verify %s: %w; the device was written but not verified", target.Name(), ErrInterrupted)
			}
			n := min(int64(len(want)), op.Len-off)
			if err := op.expected(img, off, want[:n]); err != nil {
				return fmt.Errorf("read the image at %d: %w", op.Off+off, err)
			}
			if _, err := target.ReadAt(got[:n], op.Off+off); err != nil {
				return fmt.Errorf("verify %s: read at offset %d: %w", target.Name(), op.Off+off, err)
			}
			if !bytes.Equal(want[:n], got[:n]) {
				for i := int64(0); i < n; i++ {
					if want[i] != got[i] {
						return &MismatchError{Device: target.Name(), Offset: op.Off + off + i, Want: want[i], Got: got[i]}
					}
				}
			}
			off += n
			done += n
			if progress != nil {
				progress(done, plan.VerifyBytes)
			}
		}
	}
	return nil
}

// RereadPartitions asks the kernel to read the new partition table of a
// block device.
func RereadPartitions(f *os.File) error {
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("re-read the partition table of %s: %w", f.Name(), err)
	}
	return nil
}
