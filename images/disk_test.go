package images_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

const mib = 1 << 20

func TestPlan(t *testing.T) {
	parts, err := images.Plan(images.Sizes{Image: 2048 * mib, ESP: 256 * mib, System: 512 * mib}, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB gap, then ESP, A, B at whole MiB; data runs to the last whole
	// MiB before the 33-sector backup GPT: 2048 - 1 - 256 - 512 - 512 - 1.
	want := []struct {
		name     string
		startMiB uint64
		sizeMiB  int64
		typ      string
	}{
		{layout.ESPName, 1, 256, layout.TypeESP},
		{layout.SystemAName, 257, 512, layout.TypeSystem},
		{layout.SystemBName, 769, 512, layout.TypeSystem},
		{layout.DataName, 1281, 766, layout.TypeData},
	}
	if len(parts) != len(want) {
		t.Fatalf("got %d partitions", len(parts))
	}
	for i, w := range want {
		p := parts[i]
		if p.Name != w.name || p.Start != w.startMiB*2048 || p.Size() != w.sizeMiB*mib || p.Type != w.typ || p.Index != i+1 {
			t.Errorf("partition %d = %+v (size %d MiB), want %+v", i, p, p.Size()/mib, w)
		}
	}
	again, _ := images.Plan(images.Sizes{Image: 2048 * mib, ESP: 256 * mib, System: 512 * mib}, []byte("seed"))
	other, _ := images.Plan(images.Sizes{Image: 2048 * mib, ESP: 256 * mib, System: 512 * mib}, []byte("other"))
	if again[0].GUID != parts[0].GUID || other[0].GUID == parts[0].GUID {
		t.Error("partition GUIDs must be a function of the seed")
	}
	if parts[0].GUID == parts[1].GUID {
		t.Error("partition GUIDs must differ")
	}
}

func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		s    images.Sizes
		want string
	}{
		{images.Sizes{Image: 100 * mib, ESP: 64 * mib, System: 32 * mib}, "does not fit"},
		{images.Sizes{Image: 100*mib + 512, ESP: 64 * mib}, "whole MiB"},
		{images.Sizes{Image: 130 * mib, ESP: 64 * mib, System: 32 * mib}, "no room left for thinhost-data"},
	} {
		if _, err := images.Plan(c.s, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan(%+v) = %v, want an error containing %q", c.s, err, c.want)
		}
	}
}

func writeTestImage(t *testing.T, dir string) (string, images.Boot) {
	return imagetest.WriteSmall(t, dir)
}

// TestWrite checks a written image with sgdisk -v and fsck.vfat -n, reads
// the ESP back, and checks the image stays sparse.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	img, boot := writeTestImage(t, dir)
	parts := imagetest.Check(t, img)
	if len(parts) != 4 || parts[3].Name != layout.DataName {
		t.Fatalf("partitions read back: %+v", parts)
	}

	read := func(p string) []byte { return imagetest.ReadESPFile(t, img, p) }
	for esp, src := range map[string]string{
		layout.BootloaderPath:  boot.Bootloader,
		layout.KernelPath("a"): boot.Kernel,
		layout.InitrdPath("a"): boot.Initrd,
	} {
		want, _ := os.ReadFile(src)
		if got := read(esp); !bytes.Equal(got, want) {
			t.Errorf("%s on the ESP differs from %s (%d vs %d bytes)", esp, src, len(got), len(want))
		}
	}
	entry := string(read(layout.EntryPath("a")))
	for _, want := range []string{"linux /thinhost/a/vmlinuz", "initrd /thinhost/a/initrd.zst",
		"options console=ttyS0,115200 quiet thinhost.slot=a", "sort-key thinhost\nversion 1\n"} {
		if !strings.Contains(entry, want) {
			t.Errorf("loader entry lacks %q:\n%s", want, entry)
		}
	}
	if conf := string(read(layout.LoaderConfPath)); conf != layout.LoaderConf {
		t.Errorf("loader.conf:\n%s", conf)
	}
	var info layout.SlotInfo
	if err := json.Unmarshal(read(layout.SlotInfoPath("a")), &info); err != nil {
		t.Fatalf("slot a's %s: %v", layout.SlotInfoPath("a"), err)
	}
	if want := boot.SlotInfo(); info != want || info.Loader != layout.LoaderSystemdBoot {
		t.Errorf("slot a's info = %+v, want %+v", info, want)
	}

	var st syscallStat
	if allocated(t, img, &st) > 16*mib {
		t.Errorf("image should be sparse: %d bytes allocated for 256 MiB", allocated(t, img, &st))
	}
}

// TestWriteReproducible: the same inputs give a byte-identical image.
func TestWriteReproducible(t *testing.T) {
	a, _ := writeTestImage(t, t.TempDir())
	b, _ := writeTestImage(t, t.TempDir())
	if ha, hb := imagetest.Hash(t, a), imagetest.Hash(t, b); ha != hb {
		t.Errorf("two images of the same inputs differ: %x vs %x", ha, hb)
	}
}

// TestSystemImage: system slot A holds a squashfs that the real unsquashfs
// lists and extracts, with the files' bytes and modes.
func TestSystemImage(t *testing.T) {
	dir := t.TempDir()
	img, _ := writeTestImage(t, dir)
	unsquashfs := testenv.NeedTool(t, "unsquashfs")
	parts, err := images.ReadPartitions(img)
	if err != nil {
		t.Fatal(err)
	}
	sys := imagetest.ExtractPartition(t, img, parts, layout.SystemAName)
	out, err := exec.Command(unsquashfs, "-l", sys).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -l: %v\n%s", err, out)
	}
	for _, want := range []string{"squashfs-root/sbin/tool", "squashfs-root/lib/x86_64-linux-gnu/libstandin.so.1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("unsquashfs -l lacks %s:\n%s", want, out)
		}
	}
	dest := filepath.Join(dir, "x")
	if out, err := exec.Command(unsquashfs, "-d", dest, sys).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(dest, "sbin", "tool"))
	want, _ := os.ReadFile(filepath.Join(dir, "tool"))
	if !bytes.Equal(got, want) {
		t.Error("sbin/tool differs after a round trip through squashfs")
	}
	if fi, err := os.Stat(filepath.Join(dest, "sbin", "tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("sbin/tool mode: %v %v", fi.Mode(), err)
	}
	// Every directory, the root included, is open to the host's
	// unprivileged services (unsquashfs -lls prints the modes as stored).
	out, err = exec.Command(unsquashfs, "-lls", sys).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lls: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "d") && !strings.HasPrefix(line, "drwxr-xr-x") {
			t.Errorf("a directory of the system image is not 0755: %s", line)
		}
	}
	if !strings.Contains(string(out), "drwxr-xr-x") {
		t.Errorf("unsquashfs -lls lists no directory:\n%s", out)
	}
}

// TestMediaPartitions: an ISO becomes a raw partition before the data
// partition, rounded up to whole MiB, holding the file byte for byte.
func TestMediaPartitions(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "install.iso")
	content := make([]byte, 3*mib+12345)
	for i := range content {
		content[i] = byte(i * 7)
	}
	copy(content[mib:], make([]byte, mib)) // a zero MiB stays a hole
	if err := os.WriteFile(iso, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sizes := images.Sizes{Image: 2048 * mib, ESP: 256 * mib, System: 512 * mib,
		Media: []images.Media{{Name: layout.MediaName("windows", "install"), Path: iso, Size: int64(len(content))}}}
	parts, err := images.Plan(sizes, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 5 || parts[3].Name != "thinhost-windows-install" || parts[3].Type != layout.TypeMedia ||
		parts[3].Size() != 4*mib || parts[4].Name != layout.DataName {
		t.Fatalf("partitions = %+v", parts)
	}
	_, boot := writeTestImage(t, t.TempDir())
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := images.Write(context.Background(), f, images.Config{Sizes: sizes, Seed: []byte("seed"), Boot: boot}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(content))
	if _, err := f.ReadAt(got, int64(parts[3].Start)*512); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Error("the media partition does not hold the ISO's bytes")
	}
	if _, err := images.Plan(images.Sizes{Image: 1024 * mib, ESP: 256 * mib, System: 256 * mib,
		Media: []images.Media{{Name: "big", Path: iso, Size: 600 * mib}}}, nil); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("an ISO larger than the image: %v", err)
	}
}

// TestReadUpdate: an image gives an update slot a's description, its
// boot files as on the ESP, and its system image as long as its squashfs
// says, every hash right.
func TestReadUpdate(t *testing.T) {
	img, boot := writeTestImage(t, t.TempDir())
	u, err := images.ReadUpdate(img)
	if err != nil {
		t.Fatal(err)
	}
	if u.Info != boot.SlotInfo() {
		t.Errorf("info = %+v, want %+v", u.Info, boot.SlotInfo())
	}
	var names []string
	for _, f := range u.Files {
		names = append(names, f.Name)
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: %d bytes with SHA-256 %x, the update says %d and %s", f.Name, len(b), sum, f.Size, f.SHA256)
		}
		switch f.Name {
		case layout.UpdateKernel:
			if want, _ := os.ReadFile(boot.Kernel); !bytes.Equal(b, want) {
				t.Error("the kernel differs from the one built in")
			}
		case layout.UpdateSystem:
			if string(b[:4]) != "hsqs" {
				t.Errorf("the system image starts %q", b[:4])
			}
		}
	}
	if strings.Join(names, " ") != "vmlinuz initrd.zst system.squashfs" { // boot files first
		t.Errorf("files = %v", names)
	}
	if _, err := images.ReadUpdate(boot.Kernel); err == nil {
		t.Error("a kernel read as an image")
	}
}
