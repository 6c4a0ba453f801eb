package squashfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/internal/testenv"
)

// tree makes source files and the entries that put them into a
// filesystem: what go-diskfs's writer got wrong (a directory table past
// one 8 KiB metadata block, a directory of more than 256 entries, inodes
// in several metadata blocks), files of zero, one and several blocks,
// incompressible data, modes, symbolic links and an empty directory.
func tree(t *testing.T) (entries []Entry, want map[string][]byte) {
	t.Helper()
	src := t.TempDir()
	want = map[string][]byte{}
	rng := rand.New(rand.NewSource(1))
	n := 0
	file := func(p string, data []byte, mode fs.FileMode) {
		n++
		f := filepath.Join(src, fmt.Sprint(n))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, Entry{Path: p, Src: f, Mode: mode})
		want[p] = data
	}
	for i := 0; i < 700; i++ {
		file(fmt.Sprintf("/lib/firmware/iwlwifi-%04d-with-a-long-name.ucode", i), []byte(strings.Repeat(fmt.Sprint(i), i%50)), 0o644)
	}
	for i := 0; i < 60; i++ {
		file(fmt.Sprintf("/usr/share/locale/l%02d/LC_MESSAGES/hello.mo", i), []byte(fmt.Sprintf("translation %d", i)), 0o644)
	}
	noise := make([]byte, 300<<10)
	rng.Read(noise)
	file("/usr/bin/noise", noise, 0o755)
	// The same bytes again (stored once), and other bytes of that size.
	file("/usr/lib/dri/iris_dri.so", noise, 0o644)
	other := make([]byte, len(noise))
	rng.Read(other)
	file("/usr/lib/dri/other_dri.so", other, 0o644)
	text := bytes.Repeat([]byte("squashfs block of text "), 30000)
	file("/usr/share/text", text, 0o644)
	file("/etc/empty", nil, 0o600)
	file("/usr/bin/setuid", []byte("x"), 0o755|fs.ModeSetuid)
	entries = append(entries,
		Entry{Path: "/bin", Target: "usr/bin"},
		Entry{Path: "/etc/link", Target: "/usr/share/text"},
		Entry{Path: "/empty", Dir: true, Mode: 0o700},
		Entry{Path: "/tmp", Dir: true, Mode: 0o777 | fs.ModeSticky},
	)
	return entries, want
}

func writeImage(t *testing.T, entries []Entry) string {
	t.Helper()
	return writeImageWith(t, entries, Zstd)
}

// compressions are the codecs each reader test reads.
var compressions = map[string]Compression{"zstd": Zstd, "lz4": LZ4}

func writeImageWith(t *testing.T, entries []Entry, c Compression) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.sqsh")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// At an offset, as in a partition.
	size, err := Write(f, 4096, 0, entries, Options{Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 4096+(size+4095)/4096*4096 {
		t.Fatalf("wrote %d bytes, reported %d", fi.Size()-4096, size)
	}
	return img
}

// TestUnsquashfs: squashfs-tools' own reader extracts every file with its
// bytes, modes and links.
func TestUnsquashfs(t *testing.T) {
	for name, c := range compressions {
		t.Run(name, func(t *testing.T) { testUnsquashfs(t, c) })
	}
}

func testUnsquashfs(t *testing.T, c Compression) {
	unsquashfs := testenv.NeedTool(t, "unsquashfs")
	entries, want := tree(t)
	img := writeImageWith(t, entries, c)
	dest := filepath.Join(t.TempDir(), "out")
	if out, err := exec.Command(unsquashfs, "-no-xattrs", "-d", dest, "-o", "4096", img).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	checkTree(t, dest, want)
	out, err := exec.Command(unsquashfs, "-lls", "-o", "4096", img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lls: %v\n%s", err, out)
	}
	for _, w := range []string{"drwx------ root/root", "drwxrwxrwt root/root", "-rwsr-xr-x root/root", "squashfs-root/bin -> usr/bin",
		"lrwxrwxrwx root/root", "squashfs-root/etc/link -> /usr/share/text", "-rw------- root/root 0 1970-01-01 00:00 squashfs-root/etc/empty"} {
		if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), w) {
			t.Errorf("unsquashfs -lls lacks %q:\n%s", w, out[:min(len(out), 2000)])
		}
	}
}

// TestDuplicates: a file with the bytes of another takes no room of its
// own.
func TestDuplicates(t *testing.T) {
	entries, _ := tree(t)
	size := func(entries []Entry) int64 {
		f, err := os.Create(filepath.Join(t.TempDir(), "fs"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		n, err := Write(f, 0, 0, entries, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var src string
	for _, e := range entries {
		if e.Path == "/usr/bin/noise" {
			src = e.Src
		}
	}
	with := append(append([]Entry(nil), entries...), Entry{Path: "/usr/lib/dri/radeonsi_dri.so", Src: src, Mode: 0o644})
	if a, b := size(entries), size(with); b-a > 512 {
		t.Errorf("a third copy of a 300 KiB file grew the filesystem by %d bytes", b-a)
	}
}

func checkTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	for p, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("%s: %d bytes differ from the %d written", p, len(got), len(data))
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin -> %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "usr/bin/noise")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/noise: %v %v", fi, err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "lib/firmware"))
	if err != nil || len(ents) != 700 {
		t.Errorf("lib/firmware holds %d entries (%v), want 700", len(ents), err)
	}
}

// TestKernelMount: the running kernel mounts it through a loop device and
// reads it all back (root, with loop devices and squashfs).
func TestKernelMount(t *testing.T) {
	for name, c := range compressions {
		t.Run(name, func(t *testing.T) { testKernelMount(t, c) })
	}
}

func testKernelMount(t *testing.T, c Compression) {
	testenv.NeedRoot(t)
	losetup := testenv.NeedTool(t, "losetup")
	entries, want := tree(t)
	img := writeImageWith(t, entries, c)
	out, err := exec.Command(losetup, "--find", "--show", "--read-only", "--offset", "4096", img).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command(losetup, "-d", dev).Run()
	mnt := t.TempDir()
	if err := unix.Mount(dev, mnt, "squashfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	defer unix.Unmount(mnt, 0)
	checkTree(t, mnt, want)
	if _, err := os.Stat(filepath.Join(mnt, "lib/firmware/iwlwifi-0699-with-a-long-name.ucode")); err != nil {
		t.Errorf("lookup in a directory of 700 entries: %v", err)
	}
}

// TestSameBytes: the same entries give the same filesystem.
func TestSameBytes(t *testing.T) {
	entries, _ := tree(t)
	a, _ := os.ReadFile(writeImage(t, entries))
	b, _ := os.ReadFile(writeImage(t, entries))
	if !bytes.Equal(a, b) {
		t.Error("two writes of the same entries differ")
	}
}

// TestBadEntries: problems are errors naming the path, and a filesystem
// larger than its limit is refused.
func TestBadEntries(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := filepath.Join(t.TempDir(), "src")
	noise := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(noise)
	os.WriteFile(src, noise, 0o644)
	for _, c := range []struct {
		entries []Entry
		want    string
	}{
		{[]Entry{{Path: "relative", Src: src}}, `"relative" must be absolute`},
		{[]Entry{{Path: "/a/../b", Src: src}}, "must be absolute and clean"},
		{[]Entry{{Path: "/a", Src: src, Target: "x"}}, "exactly one of"},
		{[]Entry{{Path: "/a", Src: src}, {Path: "/a", Src: src}}, "/a is listed twice"},
		{[]Entry{{Path: "/a", Src: src}, {Path: "/a/b", Src: src}}, "/a is a file and a directory"},
		{[]Entry{{Path: "/a", Src: "/nonexistent"}}, "open /nonexistent for /a"},
		{[]Entry{{Path: "/" + strings.Repeat("n", 257), Src: src}}, "longer than 256"},
	} {
		if _, err := Write(f, 0, 0, c.entries, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.entries, err, c.want)
		}
	}
	if _, err := Write(f, 0, 64<<10, []Entry{{Path: "/big", Src: src}}, Options{}); err == nil || !strings.Contains(err.Error(), "more than the 65536 bytes") {
		t.Errorf("over the limit: %v", err)
	}
}

// BenchmarkWrite writes 32 MiB in 256 files, half text, half noise (a
// system image's mix of compressible and compressed data).
func BenchmarkWrite(b *testing.B) {
	src := b.TempDir()
	rng := rand.New(rand.NewSource(3))
	var entries []Entry
	for i := 0; i < 256; i++ {
		data := make([]byte, 128<<10)
		if i%2 == 0 {
			rng.Read(data)
		} else {
			copy(data, bytes.Repeat([]byte(fmt.Sprintf("line %d of a text file\n", i)), len(data)/20))
		}
		f := filepath.Join(src, fmt.Sprint(i))
		os.WriteFile(f, data, 0o644)
		entries = append(entries, Entry{Path: fmt.Sprintf("/usr/lib/f%03d", i), Src: f, Mode: 0o644})
	}
	out, err := os.Create(filepath.Join(b.TempDir(), "fs"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	b.SetBytes(256 * 128 << 10)
	b.ResetTimer()
	for range b.N {
		if _, err := Write(out, 0, 0, entries, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
