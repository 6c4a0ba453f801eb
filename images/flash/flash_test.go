package flash

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
)

func TestMergeSubtract(t *testing.T) {
	got := merge([]Extent{{10, 5}, {0, 4}, {4, 2}, {30, 0}, {12, 10}})
	if want := []Extent{{0, 6}, {10, 12}}; !cmp.Equal(got, want) {
		t.Errorf("merge = %v, want %v", got, want)
	}
	got = subtract([]Extent{{0, 100}}, []Extent{{10, 10}, {50, 60}, {0, 5}})
	if want := []Extent{{5, 5}, {20, 30}}; !cmp.Equal(got, want) {
		t.Errorf("subtract = %v, want %v", got, want)
	}
}

// randomFile makes a file of size bytes of random data: stale bytes that
// a careless flash would leave readable.
// randomFile makes a used stick of size bytes: random bytes in the first
// 64 KiB of every MiB and in the last 64 KiB (where the backup GPT goes),
// the rest a hole, so that what flash must overwrite or zero holds
// garbage, without writing the whole size (seconds on a slow disk).
func randomFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	offs := []int64{max(size-int64(len(chunk)), 0)}
	for off := int64(0); off < size; off += 1 << 20 {
		offs = append(offs, off)
	}
	for _, off := range offs {
		rand.Read(chunk)
		if _, err := f.WriteAt(chunk[:min(int64(len(chunk)), size-off)], off); err != nil {
			t.Fatal(err)
		}
	}
}

func hashOf(t *testing.T, path string) [32]byte { return imagetest.Hash(t, path) }

// checkFlashed asserts that target holds image: every allocated byte of the
// image, zeros in the holes of the metadata regions, a valid GPT whose
// backup sits at the end of the target, and an ESP that fsck accepts.
func checkFlashed(t *testing.T, image, target string, targetSize int64) {
	t.Helper()
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	dev, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	fi, _ := img.Stat()
	data, err := DataExtents(img, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range data {
		if e.Off < 2*sector {
			e.Len -= 2*sector - e.Off
			e.Off = 2 * sector // boot sectors are patched for the device
		}
		if e.Off+e.Len > fi.Size()-33*sector && targetSize != fi.Size() {
			e.Len = fi.Size() - 33*sector - e.Off // the image's backup GPT moved
		}
		if e.Len <= 0 {
			continue
		}
		want := make([]byte, e.Len)
		got := make([]byte, e.Len)
		img.ReadAt(want, e.Off)
		dev.ReadAt(got, e.Off)
		if !bytes.Equal(want, got) {
			t.Fatalf("%s differs from the image in the data extent %+v", target, e)
		}
	}
	parts := imagetest.Check(t, target) // sgdisk -v (backup GPT at the end), fsck.vfat -n
	for _, p := range parts {
		head := make([]byte, min(p.Size(), metadataBytes))
		dev.ReadAt(head, int64(p.Start)*sector)
		want := make([]byte, len(head))
		img.ReadAt(want, int64(p.Start)*sector)
		if !bytes.Equal(head, want) {
			t.Errorf("the first %d bytes of %s on %s differ from the image (stale bytes left in a hole?)", len(head), p.Name, target)
		}
		tail := make([]byte, min(p.Size(), mib))
		tailOff := int64(p.End+1)*sector - int64(len(tail))
		dev.ReadAt(tail, tailOff)
		img.ReadAt(want[:len(tail)], tailOff)
		if !bytes.Equal(tail, want[:len(tail)]) {
			t.Errorf("the last MiB of %s on %s differs from the image (stale bytes left in a hole?)", p.Name, target)
		}
		if p.Name == layout.DataName {
			// Empty but for the marker that tells hostd it may format it.
			if _, ok := layout.ParseDataMarker(head); !ok {
				t.Errorf("the data partition does not start with the empty-data marker")
			}
			if !bytes.Equal(head[layout.DataMarkerSize:], make([]byte, len(head)-layout.DataMarkerSize)) || !bytes.Equal(tail, make([]byte, len(tail))) {
				t.Errorf("the data partition's first MiBs or last MiB are not zero: an old filesystem could survive")
			}
		}
	}
	last := make([]byte, sector)
	dev.ReadAt(last, targetSize-sector)
	if string(last[:8]) != "EFI PART" {
		t.Errorf("no backup GPT header in the last sector of %s", target)
	}
}

func TestFlashToFile(t *testing.T) {
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	target := filepath.Join(dir, "stick.raw")
	const size = 320 << 20
	randomFile(t, target, size)

	job, err := Host.Prepare(image, target, Options{AllowFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if last := job.Plan.Ops[len(job.Plan.Ops)-1]; last.Off != 0 || last.Kind != Bytes {
		t.Errorf("the boot sectors must be written last: %+v", last)
	}
	var lastDone, lastTotal int64
	res, err := job.Run(context.Background(), false, func(done, total int64) { lastDone, lastTotal = done, total }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastDone != lastTotal || lastTotal != job.Plan.TotalBytes || res.Verified != job.Plan.VerifyBytes {
		t.Errorf("progress ended at %d of %d; result %+v", lastDone, lastTotal, res)
	}
	if job.Plan.TotalBytes > 64<<20 {
		t.Errorf("wrote %d bytes for a sparse 256 MiB image: holes are being written", job.Plan.TotalBytes)
	}
	checkFlashed(t, image, target, size)

	// A byte that changes afterwards is found, by offset.
	f, _ := os.OpenFile(target, os.O_RDWR, 0)
	defer f.Close()
	corrupt := job.Plan.Ops[2].Off + 7
	var b [1]byte
	f.ReadAt(b[:], corrupt)
	f.WriteAt([]byte{b[0] ^ 0xff}, corrupt)
	var mm *MismatchError
	err = Verify(context.Background(), job.Plan, job.img, f, nil)
	if !errors.As(err, &mm) || mm.Offset != corrupt {
		t.Errorf("Verify = %v, want a mismatch at offset %d", err, corrupt)
	}
}

func TestFlashInterrupted(t *testing.T) {
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	target := filepath.Join(dir, "stick.raw")
	randomFile(t, target, 300<<20)
	job, err := Host.Prepare(image, target, Options{AllowFile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	ctx, cancel := context.WithCancel(context.Background())
	_, err = job.Run(ctx, false, func(done, total int64) {
		if done > 4<<20 {
			cancel()
		}
	}, nil)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "not bootable") {
		t.Fatalf("err = %v, want ErrInterrupted saying the device is not bootable", err)
	}
	head := make([]byte, 2*sector)
	f, _ := os.Open(target)
	defer f.Close()
	f.ReadAt(head, 0)
	if !bytes.Equal(head, make([]byte, len(head))) {
		t.Error("after an interrupted flash the boot sectors must be zero, so no firmware boots a half-written stick")
	}
}

func TestRefusalsOnFiles(t *testing.T) {
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	target := filepath.Join(dir, "file.raw")
	randomFile(t, target, 300<<20)
	before := hashOf(t, target)
	for name, c := range map[string]struct {
		target string
		opts   Options
		want   string
	}{
		"regular file": {target, Options{}, "--allow-file"},
		"the image":    {image, Options{AllowFile: true}, "the image itself"},
		"char device":  {"/dev/null", Options{AllowFile: true}, "neither a block device nor a regular file"},
		"missing":      {filepath.Join(dir, "nope"), Options{}, "no such file"},
	} {
		_, err := Host.Prepare(image, c.target, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", name, err, c.want)
		}
	}
	if hashOf(t, target) != before {
		t.Error("a refused flash changed the target")
	}
	notImage := filepath.Join(dir, "junk.img")
	randomFile(t, notImage, 1<<20)
	if _, err := Host.Prepare(notImage, target, Options{AllowFile: true}); err == nil || !strings.Contains(err.Error(), "thinhost image") {
		t.Errorf("an image without a GPT: %v", err)
	}
}
