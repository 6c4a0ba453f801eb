package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/ldd"
)

// HostFile is a file of the build machine to ship in the system image.
type HostFile struct {
	// Src is the path on the build machine; Dst the path in the image
	// (absolute). Dst defaults to Src.
	Src, Dst string
	// Package is the Debian package that installs Src, named when the
	// build machine lacks it.
	Package string
	// Optional files ship when the package's version has them (a file
	// one version of Mesa adds) and are skipped otherwise.
	Optional bool
}

// ResolveHostFiles returns files plus, for ELF programs, the shared
// libraries and dynamic loader they need, at the paths the loader looks
// for them. Each Src is resolved to a regular file on the build machine
// (Debian's merged /usr makes /lib64/ld-linux-x86-64.so.2 a chain of
// links), so the image holds plain files. Sorted by Dst.
func ResolveHostFiles(files []HostFile) ([]HostFile, error) {
	want := map[string]string{} // dst -> src
	var programs []string
	for _, f := range files {
		if f.Optional {
			if _, err := os.Stat(f.Src); err != nil {
				continue
			}
		}
		dst := f.Dst
		if dst == "" {
			dst = f.Src
		}
		want[dst] = f.Src
		programs = append(programs, f.Src)
	}
	libs, err := ldd.List(programs...)
	if err != nil {
		return nil, fmt.Errorf("find shared libraries of %s: %w", strings.Join(programs, ", "), err)
	}
	for _, l := range libs {
		if _, ok := want[l]; !ok {
			want[l] = l
		}
	}
	var out []HostFile
	for dst, src := range want {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, fmt.Errorf("find host file %s (install the Debian package that has it): %w", src, err)
		}
		out = append(out, HostFile{Src: real, Dst: dst})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out, nil
}
