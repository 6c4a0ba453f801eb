package flash

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
)

func TestKeepLayout(t *testing.T) {
	img := []Part{{1, layout.ESPName, 2048, 4095}, {2, layout.SystemAName, 4096, 8191}, {3, layout.DataName, 8192, 10239}}
	grown := append(img[:2:2], Part{3, layout.DataName, 8192, 99999})
	if kept, err := KeepLayout(img, grown); err != nil || kept.End != 99999 {
		t.Errorf("a grown data partition: %+v, %v", kept, err)
	}
	for name, c := range map[string]struct {
		dev  []Part
		want string
	}{
		"system moved":    {[]Part{img[0], {2, layout.SystemAName, 4096, 9000}, {3, layout.DataName, 9001, 99999}}, "holds 4905 sectors on the device"},
		"data moved":      {[]Part{img[0], img[1], {3, layout.DataName, 9000, 99999}}, "starts at sector 9000"},
		"renamed":         {[]Part{img[0], {2, "windows", 4096, 8191}, img[2]}, `"windows" on the device`},
		"missing":         {img[:2], "the device none"},
		"one more":        {append(append([]Part(nil), img...), Part{4, "extra", 200000, 300000}), "the image none"},
		"someone's table": {[]Part{{1, "EFI system partition", 2048, 200000}}, `"EFI system partition" on the device`},
	} {
		if _, err := KeepLayout(img, c.dev); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: KeepLayout = %v, want an error mentioning %q", name, err, c.want)
		}
	}
}

// TestFlashKeepData flashes an image to a file, fills its data partition
// with someone's files, then flashes a different build with KeepData: the
// other partitions hold the new build, the data partition and the
// partition tables are byte for byte as they were.
func TestFlashKeepData(t *testing.T) {
	dir := t.TempDir()
	a, _ := imagetest.WriteSmall(t, filepath.Join(dir))
	bdir := filepath.Join(dir, "b")
	os.Mkdir(bdir, 0o755)
	b, _ := imagetest.WriteSmall(t, bdir)
	parts := imagetest.Check(t, b)
	// Build B differs from A in its system partition.
	f, _ := os.OpenFile(b, os.O_RDWR, 0)
	newBytes := make([]byte, 64<<10)
	rand.Read(newBytes)
	sysOff := int64(parts[1].Start) * sector
	f.WriteAt(newBytes, sysOff+1<<20)
	f.Close()

	target := filepath.Join(dir, "stick.raw")
	const size = 384 << 20
	randomFile(t, target, size)
	job, err := Host.Prepare(a, target, Options{AllowFile: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Run(context.Background(), true, nil, nil); err != nil {
		t.Fatal(err)
	}
	job.Close()
	// Someone's files: random bytes over the whole data partition.
	data := parts[len(parts)-1]
	dev, _ := images.ReadPartitions(target)
	kept := dev[len(dev)-1]
	if kept.Start != data.Start {
		t.Fatalf("data partition on the stick at %d, in the image at %d", kept.Start, data.Start)
	}
	tf, _ := os.OpenFile(target, os.O_RDWR, 0)
	defer tf.Close()
	if _, err := io.CopyN(io.NewOffsetWriter(tf, int64(kept.Start)*sector), rand.Reader, kept.Size()); err != nil {
		t.Fatal(err)
	}
	region := func(off, n int64) []byte {
		buf := make([]byte, n)
		tf.ReadAt(buf, off)
		return buf
	}
	dataBefore := region(int64(kept.Start)*sector, kept.Size())
	tablesBefore := append(region(0, 34*sector), region(size-33*sector, 33*sector)...)

	job, err = Host.Prepare(b, target, Options{AllowFile: true, KeepData: true})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if job.Kept == nil || job.Kept.End != kept.End {
		t.Fatalf("job keeps %+v, want the stick's data partition %+v", job.Kept, kept)
	}
	res, err := job.Run(context.Background(), false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != job.Plan.VerifyBytes || res.Verified == 0 {
		t.Errorf("verified %d of %d bytes", res.Verified, job.Plan.VerifyBytes)
	}
	if !bytes.Equal(region(int64(kept.Start)*sector, kept.Size()), dataBefore) {
		t.Error("flash --keep-data changed the data partition")
	}
	if !bytes.Equal(append(region(0, 34*sector), region(size-33*sector, 33*sector)...), tablesBefore) {
		t.Error("flash --keep-data changed the partition tables")
	}
	if !bytes.Equal(region(sysOff+1<<20, int64(len(newBytes))), newBytes) {
		t.Error("the system partition does not hold the new build")
	}
	imagetest.Check(t, target)
	if !bytes.Equal(imagetest.ReadESPFile(t, target, layout.KernelPath("a")), imagetest.ReadESPFile(t, b, layout.KernelPath("a"))) {
		t.Error("the ESP does not hold the new build's kernel")
	}

	// A stick that holds something else is refused, and left alone.
	other := filepath.Join(dir, "other.raw")
	randomFile(t, other, size)
	before := hashOf(t, other)
	if _, err := Host.Prepare(b, other, Options{AllowFile: true, KeepData: true}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "--keep-data: it holds no partition table") {
		t.Errorf("keep-data onto random bytes: %v", err)
	}
	if hashOf(t, other) != before {
		t.Error("a refused --keep-data changed the device")
	}
}
