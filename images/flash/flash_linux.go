package flash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/internal/gpt"

	"github.com/thinhost/thinhost/internal/units"
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
	// dev is the target, opened (O_EXCL for a block device) right after
	// the checks and held until Close: Run writes to the device that was
	// checked, whatever its name points at by then.
	dev     *os.File
	diskseq uint64
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
		job := &Job{Image: image, Target: d, Plan: plan, Partitions: parts, Kept: &kept, img: img}
		if err := job.hold(); err != nil {
			return nil, err
		}
		ok = true
		return job, nil
	}
	devSize := d.Size
	if d.Regular {
		devSize = max(d.Size, fi.Size())
	}
	plan, err := NewPlan(img, fi.Size(), devSize, data, pext)
	if err != nil {
		return nil, fmt.Errorf("plan writing %s: %w", image, err)
	}
	job := &Job{Image: image, Target: d, Plan: plan, Partitions: parts, img: img}
	if err := job.hold(); err != nil {
		return nil, err
	}
	ok = true
	return job, nil
}

// hold opens the target for writing and checks that the descriptor is the
// device Inspect described (same device number and size): from here on
// the name may point elsewhere — a stick replugged, a loop device
// re-attached — and the job still writes to what was checked, or fails.
func (j *Job) hold() error {
	d := j.Target
	if d.Regular {
		return nil
	}
	// O_EXCL on a block device fails while anything has it open
	// exclusively: a mount, RAID, device-mapper.
	f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("open %s for writing: %w", d.Path, err)
	}
	seq, err := j.identify(f)
	if err != nil {
		f.Close()
		return err
	}
	j.dev, j.diskseq = f, seq
	return nil
}

// identify checks that f is the device Inspect described and returns its
// disk sequence number (0 where the kernel has none).
func (j *Job) identify(f *os.File) (uint64, error) {
	d := j.Target
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", d.Path, err)
	}
	size, err := ioctlUint64(f, unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("read the size of %s: %w (was it unplugged?)", d.Path, err)
	}
	if (!d.Partition && st.Rdev != d.Dev) || int64(size) != d.Size {
		return 0, fmt.Errorf("%w %s: it is not the device that was checked (now device %d:%d, %s; checked %d:%d, %s): nothing was written; run flash again",
			ErrRefused, d.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), units.Bytes(int64(size)), unix.Major(d.Dev), unix.Minor(d.Dev), units.Bytes(d.Size))
	}
	seq, _ := ioctlUint64(f, blkGetDiskSeq)
	return seq, nil
}

// ioctlUint64 runs an ioctl that fills a uint64.
func ioctlUint64(f *os.File, req uint) (uint64, error) {
	var v uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&v))); errno != 0 {
		return 0, errno
	}
	return v, nil
}

// blkGetDiskSeq is BLKGETDISKSEQ (_IOR(0x12, 128, __u64), Linux 5.15): a
// number the kernel gives each disk it attaches, never reused in a boot.
const blkGetDiskSeq = 0x80081280

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

// Close releases the image and the device.
func (j *Job) Close() error {
	if j.dev != nil {
		j.dev.Close()
	}
	return j.img.Close()
}

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
// verifies unless noVerify. write and verify report progress. The boot
// sectors (the protective MBR and the primary GPT header) are written only
// after everything else is written and verified, then verified on their
// own: a stick whose data does not read back stays one no firmware boots.
func (j *Job) Run(ctx context.Context, noVerify bool, write, verify Progress) (*Result, error) {
	f := j.dev
	if j.Target.Regular {
		var err error
		if f, err = os.OpenFile(j.Target.Path, os.O_RDWR, 0); err != nil {
			return nil, fmt.Errorf("open %s for writing: %w", j.Target.Path, err)
		}
		defer f.Close()
		if err := f.Truncate(j.Plan.DeviceSize); err != nil {
			return nil, fmt.Errorf("size %s: %w", j.Target.Path, err)
		}
	} else {
		// The device held since the checks is still that device: its
		// size and disk sequence number are what they were.
		seq, err := j.identify(f)
		if err != nil {
			return nil, err
		}
		if seq != j.diskseq {
			return nil, fmt.Errorf("%w %s: the kernel attached it again since it was checked (disk sequence %d, then %d): nothing was written; run flash again", ErrRefused, j.Target.Path, j.diskseq, seq)
		}
	}
	body, boot := j.Plan.splitBoot()
	res := &Result{}
	start := time.Now()
	report := func(p Progress, offset int64, total int64) Progress {
		if p == nil {
			return nil
		}
		return func(done, _ int64) { p(offset+done, total) }
	}
	if noVerify {
		if err := Write(ctx, j.Plan, j.img, f, write); err != nil {
			return nil, err
		}
	} else {
		if err := Write(ctx, body, j.img, f, report(write, 0, j.Plan.TotalBytes)); err != nil {
			if boot != nil && !errors.Is(err, ErrInterrupted) {
				return nil, fmt.Errorf("%w; its boot sectors stay zeroed, so no firmware boots it", err)
			}
			return nil, err
		}
		// The write bar ends here, before the verify bar starts: the
		// boot sectors' 1 KiB goes to the device after verification.
		if write != nil {
			write(j.Plan.TotalBytes, j.Plan.TotalBytes)
		}
	}
	res.Written = j.Plan.TotalBytes
	res.WriteTime = time.Since(start)
	if noVerify {
		if !j.Target.Regular {
			res.RereadErr = RereadPartitions(f)
		}
		return res, nil
	}
	start = time.Now()
	if err := Verify(ctx, body, j.img, f, report(verify, 0, j.Plan.VerifyBytes)); err != nil {
		if boot != nil {
			return nil, fmt.Errorf("%w; its boot sectors stay zeroed, so no firmware boots it", err)
		}
		return nil, err
	}
	if boot != nil {
		if err := Write(ctx, boot, j.img, f, nil); err != nil {
			return nil, err
		}
		if err := Verify(ctx, boot, j.img, f, report(verify, body.VerifyBytes, j.Plan.VerifyBytes)); err != nil {
			_, _ = f.WriteAt(make([]byte, boot.TotalBytes), boot.Ops[0].Off)
			_ = f.Sync()
			return nil, fmt.Errorf("%w; its boot sectors were zeroed again, so no firmware boots it", err)
		}
	}
	res.Verified = j.Plan.VerifyBytes
	res.VerifyTime = time.Since(start)
	if !j.Target.Regular {
		res.RereadErr = RereadPartitions(f)
	}
	return res, nil
}
