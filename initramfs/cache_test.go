package initramfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestProgramsKey: the key follows the Go sources, go.mod and go.sum and
// the command list, and ignores tests, testdata and hidden folders.
func TestProgramsKey(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.org/m\n")
	write("cmd/x/main.go", "package main\nfunc main() {}\n")
	ctx := context.Background()
	key := func(cmds ...string) string {
		k, err := programsKey(ctx, dir, cmds)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key("a")
	if key("a") != base {
		t.Fatal("the key is not stable")
	}
	for _, rel := range []string{"cmd/x/main_test.go", "cmd/x/testdata/y.go", ".git/z.go", "README.md"} {
		write(rel, "changed")
		if key("a") != base {
			t.Errorf("%s changed the key", rel)
		}
	}
	if key("a", "b") == base {
		t.Error("the command list does not change the key")
	}
	for _, rel := range []string{"cmd/x/main.go", "go.sum", "pkg/new.go"} {
		write(rel, "changed "+rel)
		k := key("a")
		if k == base {
			t.Errorf("%s did not change the key", rel)
		}
		base = k
	}
}
