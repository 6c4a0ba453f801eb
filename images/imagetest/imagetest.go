// Package imagetest checks a written thinhost disk image with the real
// tools a user would trust: sgdisk -v for the GPT and fsck.vfat -n for the
// ESP. Tests of images/ and the end-to-end build test use it.
package imagetest

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

// Check runs sgdisk -v on the image and fsck.vfat -n on its ESP, and
// returns the partitions it read.
func Check(t testing.TB, image string) []images.Partition {
	t.Helper()
	sgdisk := testenv.NeedTool(t, "sgdisk")
	fsck := testenv.NeedTool(t, "fsck.vfat")

	out, err := exec.Command(sgdisk, "-v", image).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v %s: %v\n%s", image, err, out)
	}
	parts, err := images.ReadPartitions(image)
	if err != nil {
		t.Fatal(err)
	}
	esp := ExtractPartition(t, image, parts, layout.ESPName)
	out, err = exec.Command(fsck, "-n", esp).CombinedOutput()
	// A clean run prints the version and one summary line; anything more
	// is a finding, even when the exit status is 0.
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || len(lines) != 2 {
		t.Fatalf("fsck.vfat -n on the ESP of %s: %v\n%s", image, err, out)
	}
	return parts
}

// ExtractPartition copies the named partition into a file of its own.
func ExtractPartition(t testing.TB, image string, parts []images.Partition, name string) string {
	t.Helper()
	for _, p := range parts {
		if p.Name != name {
			continue
		}
		in, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		dst := filepath.Join(t.TempDir(), name+".img")
		out, err := os.Create(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := io.Copy(out, io.NewSectionReader(in, int64(p.Start)*512, p.Size())); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	t.Fatalf("%s has no partition %q", image, name)
	return ""
}
