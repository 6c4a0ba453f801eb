package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("vars"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old and longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "vars" {
		t.Errorf("dst = %q", b)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := CopyFile(filepath.Join(dir, "missing"), dst); err == nil {
		t.Error("copying a missing file succeeded")
	}
}

// TestCopyDir: dst becomes a copy of src (files added since are gone),
// and a source holding anything but files is refused with dst untouched.
func TestCopyDir(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for p, c := range map[string]string{"src/a": "1", "src/b": "2", "dst/a": "old", "dst/extra": "x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CopyDir(src, dst); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dst)
	if len(entries) != 2 {
		t.Errorf("dst holds %d entries, want a and b", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "1" {
		t.Errorf("dst/a = %q", b)
	}
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CopyDir(src, dst); err == nil {
		t.Error("a directory in the source was copied")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "b")); string(b) != "2" {
		t.Errorf("dst changed by a refused copy: b = %q", b)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary copy was left: %v", err)
	}
}
