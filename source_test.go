package thinhost

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestSourceCoversPrograms: every package of this module that hostd and
// the image's modprobe import is in Source with its Go files, within
// HostSourceRoots (their cache key); and so is every package of thinhost
// built for Windows (thinhost.exe, which Windows guests get). A thinhost
// outside a checkout compiles the same programs.
func TestSourceCoversPrograms(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	for _, c := range []struct {
		goos  string
		pkgs  []string
		roots []string
	}{
		{"linux", []string{"./cmd/hostd", "./cmd/modprobe"}, HostSourceRoots},
		{"windows", []string{"./cmd/thinhost"}, SourceRoots},
	} {
		cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{join .GoFiles \",\"}} {{join .EmbedFiles \",\"}}{{end}}"}, c.pkgs...)...)
		cmd.Env = append(os.Environ(), "GOOS="+c.goos, "GOARCH=amd64")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		const module = "github.com/thinhost/thinhost"
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || (f[0] != module && !strings.HasPrefix(f[0], module+"/")) {
				continue
			}
			dir := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
			if !slices.ContainsFunc(c.roots, func(r string) bool { return dir == r || strings.HasPrefix(dir, r+"/") }) {
				t.Errorf("%s (GOOS=%s %s) needs %s, outside its roots %v", f[0], c.goos, strings.Join(c.pkgs, " "), dir, c.roots)
			}
			var files []string
			for _, list := range f[1:] {
				files = append(files, strings.Split(list, ",")...)
			}
			for _, name := range files {
				if _, err := fs.Stat(Source, path.Join(dir, name)); err != nil {
					t.Errorf("Source lacks %s/%s, which %s needs: add its directory to the go:embed line and SourceRoots", dir, name, f[0])
				}
				n++
			}
		}
		if n < 50 {
			t.Errorf("only %d files checked: go list said\n%s", n, out)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := fs.Stat(Source, f); err != nil {
			t.Errorf("Source lacks %s", f)
		}
	}
}

// TestSourceRoots: SourceRoots names what the go:embed line does.
func TestSourceRoots(t *testing.T) {
	for _, r := range SourceRoots {
		if _, err := fs.Stat(Source, r); err != nil {
			t.Errorf("SourceRoots names %s, which Source lacks", r)
		}
	}
	top, _ := fs.ReadDir(Source, ".")
	for _, e := range top {
		covered := false
		for _, r := range SourceRoots {
			if r == e.Name() || strings.HasPrefix(r, e.Name()+"/") {
				covered = true
			}
		}
		if !covered {
			t.Errorf("Source holds %s, which SourceRoots does not name", e.Name())
		}
	}
}

// TestImportBoundaries keeps the seams between the parts: the CLI talks
// to hostd through its packages (the API's client, the guests' argv), never
// the daemon's root package; hostd imports of the image writer only the
// shared contract (images/layout, with hostd's versioned configuration in
// images/layout/config); the builder no hostd package.
func TestImportBoundaries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	const m = "github.com/thinhost/thinhost/"
	for pkg, refused := range map[string]func(dep string) bool{
		"./cmd/thinhost/cli": func(dep string) bool { return dep == m+"hostd" },
		"./hostd/...": func(dep string) bool {
			return strings.HasPrefix(dep, m+"images/") && dep != m+"images/layout" && !strings.HasPrefix(dep, m+"images/layout/")
		},
		"./builder/...": func(dep string) bool { return dep == m+"hostd" || strings.HasPrefix(dep, m+"hostd/") },
		// The kernel's module helper is small: the module loader alone.
		"./cmd/modprobe": func(dep string) bool { return dep == m+"hostd" },
		// The E2E suite reads hostd's console through api's constants.
		"./cmd/thinhost/e2e": func(dep string) bool { return dep == m+"hostd" },
	} {
		args := []string{"list", "-deps", pkg}
		if strings.HasSuffix(pkg, "/e2e") {
			// The E2E package is tests alone: their imports are its.
			// (Elsewhere tests may build and boot images.)
			args = []string{"list", "-deps", "-test", pkg}
		}
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if refused(dep) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
