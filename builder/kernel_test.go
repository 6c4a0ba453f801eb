package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage is enough of an x86 boot header for kernelFrom: "HdrS" at
// 0x202 and a kernel_version pointer at 0x20E (relative to 0x200).
func fakeBzImage(release string) []byte {
	b := make([]byte, 0x1000)
	copy(b[0x202:], "HdrS")
	const verOff = 0x800
	b[0x20E] = byte((verOff - 0x200) & 0xff)
	b[0x20F] = byte((verOff - 0x200) >> 8)
	copy(b[verOff:], release+" (debian-kernel@lists.debian.org) #1 SMP\x00")
	return b
}

type tarEntry struct {
	name string
	body string
	dir  bool
	link string
}

func tarGz(t *testing.T, entries []tarEntry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// fakeDeb writes a Debian package (an ar archive of debian-binary,
// control.tar.gz and data.tar.gz) as dpkg-deb builds it.
func fakeDeb(t *testing.T, path, pkg string, data []tarEntry) {
	control := fmt.Sprintf("Package: %s\nVersion: 6.1.99-1\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: test kernel\n", pkg)
	members := []struct {
		name string
		body []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", tarGz(t, []tarEntry{{name: "./control", body: control}})},
		{"data.tar.gz", tarGz(t, data)},
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range members {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKernelFromDeb(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "linux.deb")
	rel := "6.1.0-99-amd64"
	fakeDeb(t, deb, "linux-image-"+rel, []tarEntry{
		{name: "./boot/", dir: true},
		{name: "./boot/vmlinuz-" + rel, body: string(fakeBzImage(rel))},
		{name: "./boot/System.map-" + rel, body: "not needed"},
		{name: "./lib/modules/" + rel + "/kernel/fs/ext4/ext4.ko", body: "ELF"},
		{name: "./lib/modules/" + rel + "/modules.builtin", body: "kernel/fs/fat/vfat.ko\n"},
		{name: "./lib/modules/" + rel + "/build", link: "/usr/src/linux-headers-" + rel},
		{name: "./usr/share/doc/linux-image/changelog.gz", body: "x"},
	})
	cache := &Cache{Dir: filepath.Join(dir, "cache")}
	k, err := kernelFrom(context.Background(), cache, deb, "abc123", "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != rel || k.Package != "linux-image-"+rel+" 6.1.99-1" {
		t.Errorf("kernel = %+v", k)
	}
	if !strings.HasPrefix(k.Image, filepath.Join(cache.Dir, "kernels", "abc123")) {
		t.Errorf("unpacked outside the cache: %s", k.Image)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "kernel/fs/ext4/ext4.ko")); err != nil {
		t.Error(err)
	}
	for _, unwanted := range []string{"boot/System.map-" + rel, "usr"} {
		if _, err := os.Stat(filepath.Join(cache.Dir, "kernels", "abc123", unwanted)); err == nil {
			t.Errorf("%s was unpacked; only vmlinuz and lib/modules are needed", unwanted)
		}
	}
	// A second call reuses the unpacked tree instead of unpacking again.
	marker := filepath.Join(k.ModulesDir, "marker")
	os.WriteFile(marker, nil, 0o644)
	k2, err := kernelFrom(context.Background(), cache, deb, "abc123", "")
	if err != nil || k2.Image != k.Image {
		t.Fatalf("second call: %+v, %v", k2, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("the cached kernel tree was unpacked again")
	}
}

func TestKernelFromDebErrors(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "other.deb")
	fakeDeb(t, deb, "hello", []tarEntry{{name: "./usr/bin/hello", body: "x"}})
	cache := &Cache{Dir: filepath.Join(dir, "cache")}
	if _, err := kernelFrom(context.Background(), cache, deb, "s1", ""); err == nil || !strings.Contains(err.Error(), `"hello", not a linux-image package`) {
		t.Errorf("non-kernel package: %v", err)
	}
	evil := filepath.Join(dir, "evil.deb")
	fakeDeb(t, evil, "linux-image-x", []tarEntry{{name: "../../lib/modules/x", body: "x"}})
	if _, err := kernelFrom(context.Background(), cache, evil, "s2", ""); err == nil || !strings.Contains(err.Error(), "leaves the package root") {
		t.Errorf("path traversal: %v", err)
	}
	if _, err := kernelFrom(context.Background(), cache, deb, "s3", "/lib/modules/x"); err == nil || !strings.Contains(err.Error(), "remove modules_dir") {
		t.Errorf("deb with modules_dir: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("hello"), 0o644)
	if _, err := kernelFrom(context.Background(), cache, junk, "s4", ""); err == nil || !strings.Contains(err.Error(), "neither a Debian linux-image .deb nor a bzImage") {
		t.Errorf("junk: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache.Dir, "kernels")); len(entries) != 0 {
		t.Errorf("failed unpacks left %d entries in the cache", len(entries))
	}
}

func TestPlainKernel(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "bzImage")
	os.WriteFile(img, fakeBzImage("6.6.0-custom"), 0o644)
	mods := filepath.Join(dir, "6.6.0-custom")
	os.MkdirAll(mods, 0o755)
	k, err := kernelFrom(context.Background(), &Cache{Dir: dir}, img, "s", mods)
	if err != nil || k.Release != "6.6.0-custom" || k.ModulesDir != mods || k.Image != img {
		t.Errorf("plain kernel = %+v, %v", k, err)
	}
	wrong := filepath.Join(dir, "6.1.0-other")
	os.MkdirAll(wrong, 0o755)
	if _, err := kernelFrom(context.Background(), &Cache{Dir: dir}, img, "s", wrong); err == nil || !strings.Contains(err.Error(), "will not load") {
		t.Errorf("modules of another release: %v", err)
	}
}

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"", "/dev/null", dir, filepath.Join(dir, "no", "such", "dir", "x.img")} {
		if err := checkOutput(bad); err == nil {
			t.Errorf("checkOutput(%q) accepted", bad)
		}
	}
	if err := checkOutput(filepath.Join(dir, "x.img")); err != nil {
		t.Errorf("a new file in an existing directory: %v", err)
	}
}
