package flash

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/gpt"
)

// Job is a checked, planned flash: Prepare wrote nothing, Run writes.
type Job struct {
	Image  string
	Target *Disk
	Plan   *Plan
	// Partitions are the image's, for messages.
	Partitions []images.Partition
	// Kept is the device's data partition when the job keeps it
	// (Options.KeepData).
	Kept *Part

	img *os.File
}

// Prepare inspects the image and the target, refuses what Check refuses,
// and plans the writes. It writes nothing. Close the Job when done.
func (s System) Prepare(image, target string, opts Options) (*Job, error) {
	img, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			img.Close()
		}
	}()
	fi, err := img.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat image: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s is not a regular file", image)
	}
	parts, err := images.ReadPartitions(image)
	if err != nil {
		return nil, fmt.Errorf("%w (is %s a thinhost image?)", err, image)
	}
	d, err := s.Inspect(target)
	if err != nil {
		return nil, err
	}
	if err := s.Check(image, fi.Size(), d, opts); err != nil {
		return nil, err
	}
	data, err := DataExtents(img, fi.Size())
	if err != nil {
		return nil, err
	}
	var pext []Extent
	for _, p := range parts {
		pext = append(pext, Extent{int64(p.Start) * sector, p.Size()})
	}
	if opts.KeepData {
		var iparts []Part
		for _, p := range parts {
			iparts = append(iparts, Part{Index: p.Index, Name: p.Name, Start: p.Start, End: p.End})
		}
		kept, err := s.keptData(d, iparts)
		if err != nil {
			return nil, err
		}
		plan, err := NewKeepPlan(fi.Size(), d.Size, data, iparts, kept)
		if err != nil {
			return nil, fmt.Errorf("plan writing %s: %w", image, err)
		}
		ok = true
		return &Job{Image: image, Target: d, Plan: plan, Partitions: parts, Kept: &kept, img: img}, nil
	}
	devSize := d.Size
	if d.Regular {
		devSize = max(d.Size, fi.Size())
	}
	plan, err := NewPlan(img, fi.Size(), devSize, data, pext)
	if err != nil {
		return nil, fmt.Errorf("plan writing %s: %w", image, err)
	}
	ok = true
	return &Job{Image: image, Target: d, Plan: plan, Partitions: parts, img: img}, nil
}

// keptData reads the target's partition table and checks that the image
// fits it with the data partition kept; it returns that partition.
func (s System) keptData(d *Disk, img []Part) (Part, error) {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w %s: --keep-data: %s", ErrRefused, d.Path, fmt.Sprintf(format, a...))
	}
	f, err := os.Open(d.Path)
	if err != nil {
		return Part{}, fmt.Errorf("open %s: %w", d.Path, err)
	}
	defer f.Close()
	t, err := gpt.Read(f, d.Size/sector)
	if err != nil {
		return Part{}, refuse("it holds no partition table thinhost can read (%v); it needs a stick that holds a thinhost image", err)
	}
	if t.FromBackup {
		return Part{}, refuse("its primary partition table is damaged; boot it once (hostd repairs it from the backup) and try again")
	}
	kept, err := KeepLayout(img, GPTParts(t))
	if err != nil {
		return Part{}, refuse("the image does not fit the layout on it: %v; save the data partition's files and flash without --keep-data (it erases them), or build the image with the sizes the stick was made with", err)
	}
	return kept, nil
}

// Close releases the image.
func (j *Job) Close() error { return j.img.Close() }

// Result is what Run did.
type Result struct {
	Written, Verified     int64
	WriteTime, VerifyTime time.Duration
	// RereadErr is set when the kernel could not re-read the partition
	// table (the data is written; replugging the stick has the same
	// effect).
	RereadErr error
}

// Run writes the plan, asks the kernel to re-read the partition table, and
// verifies unless noVerify. write and verify report progress.
func (j *Job) Run(ctx context.Context, noVerify bool, write, verify Progress) (*Result, error) {
	flags := os.O_RDWR
	if !j.Target.Regular {
		// O_EXCL on a block device fails while anything has it open
		// exclusively — a mount, RAID, device-mapper — the last guard
		// against a race with the checks.
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(j.Target.Path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for writing: %w", j.Target.Path, err)
	}
	defer f.Close()
	if j.Target.Regular {
		if err := f.Truncate(j.Plan.DeviceSize); err != nil {
			return nil, fmt.Errorf("size %s: %w", j.Target.Path, err)
		}
	}
	res := &Result{}
	start := time.Now()
	if err := Write(ctx, j.Plan, j.img, f, write); err != nil {
		return nil, err
	}
	res.Written = j.Plan.TotalBytes
	res.WriteTime = time.Since(start)
	if !j.Target.Regular {
		res.RereadErr = RereadPartitions(f)
	}
	if noVerify {
		return res, nil
	}
	start = time.Now()
	if err := Verify(ctx, j.Plan, j.img, f, verify); err != nil {
		return nil, err
	}
	res.Verified = j.Plan.VerifyBytes
	res.VerifyTime = time.Since(start)
	return res, nil
}
