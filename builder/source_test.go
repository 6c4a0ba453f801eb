package builder

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestWriteSource: the carried source is written once into a directory
// named by its content, whole, and found there the next time; another
// content gets another directory.
func TestWriteSource(t *testing.T) {
	root := t.TempDir()
	src := fstest.MapFS{
		"go.mod":              {Data: []byte("module github.com/thinhost/thinhost\n")},
		"hostd/web/page.html": {Data: []byte("<p>")},
		"cmd/hostd/main.go":   {Data: []byte("package main\n")},
		"internal/units/x.go": {Data: []byte("package units\n")},
	}
	dir, err := writeSource(src, root)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "hostd", "web", "page.html")); err != nil || string(b) != "<p>" {
		t.Errorf("page.html = %q, %v", b, err)
	}
	if modulePathOf(filepath.Join(dir, "go.mod")) != ModulePath {
		t.Error("the written go.mod is not thinhost's")
	}
	os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644)
	again, err := writeSource(src, root)
	if err != nil || again != dir {
		t.Fatalf("second write: %s, %v (first %s)", again, err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "marker")); err != nil {
		t.Error("the second write did not reuse the first")
	}
	src["cmd/hostd/main.go"] = &fstest.MapFile{Data: []byte("package main // changed\n")}
	if other, err := writeSource(src, root); err != nil || other == dir {
		t.Errorf("changed source: %s, %v", other, err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 2 {
		t.Errorf("%d entries in %s, want the two sources and no partial one", len(entries), root)
	}
}

// TestFindSourceOutsideACheckout: in a directory that is no checkout,
// with no THINHOST_SRC, the source is this thinhost's own, written into
// the cache; inside the checkout, the checkout.
func TestFindSourceOutsideACheckout(t *testing.T) {
	t.Setenv("THINHOST_SRC", "")
	cache := t.TempDir()
	t.Chdir(t.TempDir())
	s, err := findSource("", cache)
	if err != nil || !s.Embedded || filepath.Dir(s.Dir) != filepath.Join(cache, "source") {
		t.Fatalf("findSource = %+v, %v", s, err)
	}
	for _, f := range []string{"go.mod", "go.sum", "cmd/hostd/main.go", "hostd/web/web.go"} {
		if _, err := os.Stat(filepath.Join(s.Dir, f)); err != nil {
			t.Errorf("the written source lacks %s", f)
		}
	}
	if _, err := findSource(t.TempDir(), cache); err == nil {
		t.Error("a named directory without thinhost's go.mod was taken")
	}
}
