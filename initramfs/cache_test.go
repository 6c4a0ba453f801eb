package initramfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thinhost/thinhost"
)

// TestProgramsKey: the key follows go.mod and go.sum, the source of the
// packages the programs are built from with what they embed, and the
// command list; not tests, testdata, hidden folders, or the rest of the
// module (the builder, the CLI, the docs).
func TestProgramsKey(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range thinhost.HostSourceRoots {
		if strings.HasPrefix(root, "go.") {
			write(root, "module example.org/m\n")
		} else {
			write(root+"/x.go", "package x\n")
		}
	}
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
	for _, rel := range []string{"cmd/hostd/main_test.go", "hostd/testdata/y.go", "hostd/.git/z.go", "README.md", "builder/build.go", "cmd/thinhost/main.go"} {
		write(rel, "changed")
		if key("a") != base {
			t.Errorf("%s changed the key", rel)
		}
	}
	if key("a", "b") == base {
		t.Error("the command list does not change the key")
	}
	for _, rel := range []string{"cmd/hostd/x.go", "go.sum", "hostd/new.go", "hostd/web/templates/page.html", "hostd/web/static/page.css"} {
		write(rel, "changed "+rel)
		k := key("a")
		if k == base {
			t.Errorf("%s did not change the key", rel)
		}
		base = k
	}
}
