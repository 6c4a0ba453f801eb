// Package imagetest checks a written thinhost disk image with the real
// tools a user would trust: sgdisk -v for the GPT and fsck.vfat -n for the
// ESP. Tests of images/ and the end-to-end build test use it.
package imagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs"

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
	// A system image, when the slot holds one, must list with the real
	// unsquashfs.
	sys := ExtractPartition(t, image, parts, layout.SystemAName)
	if head, err := os.ReadFile(sys); err == nil && len(head) > 4 && string(head[:4]) == "hsqs" {
		unsquashfs := testenv.NeedTool(t, "unsquashfs")
		if out, err := exec.Command(unsquashfs, "-l", sys).CombinedOutput(); err != nil {
			t.Fatalf("unsquashfs -l on the system image of %s: %v\n%s", image, err, out)
		}
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

// ReadESPFile returns the file at name (a path such as layout.KernelPath("a"))
// on the image's ESP, read through go-diskfs.
func ReadESPFile(t testing.TB, image, name string) []byte {
	t.Helper()
	d, err := diskfs.Open(image, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(1)
	if err != nil {
		t.Fatalf("read the ESP of %s: %v", image, err)
	}
	f, err := fs.OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		t.Fatalf("open %s on the ESP of %s: %v", name, image, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Hash is the sha256 of a whole file, holes included.
func Hash(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// WriteSmall writes a 256 MiB image (64 MiB ESP, 32 MiB system slots)
// with stand-in boot files into dir, and returns its path and those files.
func WriteSmall(t testing.TB, dir string) (string, images.Boot) {
	t.Helper()
	mk := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boot := images.Boot{
		Bootloader: mk("bootx64.efi", bytes.Repeat([]byte("MZ-loader"), 5000)),
		Kernel:     mk("vmlinuz", bytes.Repeat([]byte("kernel"), 300000)),
		Initrd:     mk("initrd", bytes.Repeat([]byte("initrd"), 200000)),
		Cmdline:    "console=ttyS0,115200 quiet",
		Title:      "thinhost test",
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tool := mk("tool", bytes.Repeat([]byte("\x7fELF stand-in"), 100000))
	os.Chmod(tool, 0o755)
	_, err = images.Write(context.Background(), f, images.Config{
		Sizes: images.Sizes{Image: 256 << 20, ESP: 64 << 20, System: 32 << 20},
		Boot:  boot,
		System: []images.SystemFile{
			{Src: tool, Dst: "/sbin/tool", Package: "tools", Version: "1.0"},
			{Src: boot.Bootloader, Dst: "/lib/x86_64-linux-gnu/libstandin.so.1"},
		},
		Seed: []byte("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return img, boot
}
