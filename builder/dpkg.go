package builder

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// debianPackages tells which Debian package of the build machine installed
// a file, and its version, from dpkg's database (read directly: no dpkg
// needed). Missing information is left empty, never guessed.
type debianPackages struct {
	owner   map[string]string // path -> package
	version map[string]string // package -> version
}

func loadDebianPackages(root string) *debianPackages {
	dp := &debianPackages{owner: map[string]string{}, version: map[string]string{}}
	lists, _ := filepath.Glob(filepath.Join(root, "var/lib/dpkg/info/*.list"))
	for _, l := range lists {
		pkg := strings.TrimSuffix(filepath.Base(l), ".list")
		pkg, _, _ = strings.Cut(pkg, ":") // libc6:amd64
		f, err := os.Open(l)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			dp.owner[sc.Text()] = pkg
		}
		f.Close()
	}
	if f, err := os.Open(filepath.Join(root, "var/lib/dpkg/status")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var pkg string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "Package: "); ok {
				pkg = v
			} else if v, ok := strings.CutPrefix(line, "Version: "); ok && pkg != "" {
				dp.version[pkg] = v
			}
		}
		f.Close()
	}
	return dp
}

// lookup returns the package and version owning any of paths; on a merged
// /usr the database may name /sbin/x or /usr/sbin/x, so both are tried.
func (dp *debianPackages) lookup(paths ...string) (pkg, version string) {
	for _, p := range paths {
		for _, c := range []string{p, "/usr" + p, strings.TrimPrefix(p, "/usr")} {
			if pkg := dp.owner[c]; pkg != "" {
				return pkg, dp.version[pkg]
			}
		}
	}
	return "", ""
}
