package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// part lays out an unpacked package: path -> the build machine file to
// copy, or "->target" for a symbolic link.
func part(t *testing.T, name string, files map[string]string) TreePart {
	t.Helper()
	dir := t.TempDir()
	for p, src := range files {
		dst := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if target, ok := strings.CutPrefix(src, "->"); ok {
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("this machine lacks %s: %v", src, err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return TreePart{Package: &Package{Name: name, Version: "1"}, Dir: dir}
}

// TestTreeLibraries resolves a real program's libraries and loader inside
// a tree of unpacked packages, merged-/usr spellings and links included,
// with nothing read from the build machine's /lib.
func TestTreeLibraries(t *testing.T) {
	libc := part(t, "libc6", map[string]string{
		"lib/x86_64-linux-gnu/libc.so.6":            "/lib/x86_64-linux-gnu/libc.so.6",
		"lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
		"lib64/ld-linux-x86-64.so.2":                "->/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
	})
	core := part(t, "coreutils", map[string]string{
		"bin/true":      "/usr/bin/true",
		"usr/bin/alias": "->../../bin/true",
	})
	tree, err := NewTree([]TreePart{core, libc})
	if err != nil {
		t.Fatal(err)
	}
	f, err := tree.Lookup("/usr/bin/alias")
	if err != nil || f.Path != "/bin/true" || f.Package.Name != "coreutils" {
		t.Fatalf("Lookup alias = %+v, %v", f, err)
	}
	if f, err := tree.Lookup("/usr/lib/x86_64-linux-gnu/libc.so.6"); err != nil || f.Package.Name != "libc6" {
		t.Errorf("merged-/usr lookup = %+v, %v", f, err)
	}
	libs, err := tree.Libraries("/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range libs {
		got = append(got, l.Path+" "+l.Package.Name)
		if fi, err := os.Lstat(l.File); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %s is not a regular file", l.Path, l.File)
		}
	}
	want := []string{"/lib/x86_64-linux-gnu/libc.so.6 libc6", "/lib64/ld-linux-x86-64.so.2 libc6"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Libraries (-want +got):\n%s", d)
	}

	// Without libc6 the program cannot run: said, naming the library.
	alone, _ := NewTree([]TreePart{core})
	if _, err := alone.Libraries("/bin/true"); !errors.Is(err, ErrNotInTree) || !strings.Contains(err.Error(), "libc.so.6") && !strings.Contains(err.Error(), "ld-linux") {
		t.Errorf("without libc6: %v", err)
	}
	loop := part(t, "loop", map[string]string{"a": "->b", "b": "->a"})
	lt, _ := NewTree([]TreePart{loop})
	if _, err := lt.Lookup("/a"); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("link loop: %v", err)
	}
}
