package initramfs

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/ldd"
)

// HostFile is a file of the build machine to ship in the initramfs.
type HostFile struct {
	// Src is the path on the build machine; Dst the path in the image
	// (absolute). Dst defaults to Src.
	Src, Dst string
}

// hostFileList returns "src:dst" entries for mkuimage: each file, and for
// ELF programs the shared libraries and dynamic loader they need, at the
// paths the loader will look for them. Symlinks are resolved on the build
// machine, so every entry in the image is a plain file (Debian's merged
// /usr makes /lib64/ld-linux-x86-64.so.2 a chain of links).
func hostFileList(files []HostFile) ([]string, error) {
	want := map[string]string{} // dst -> src
	var programs []string
	for _, f := range files {
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
	var out []string
	for dst, src := range want {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, fmt.Errorf("find host file %s (install the Debian package that has it): %w", src, err)
		}
		out = append(out, real+":"+strings.TrimPrefix(dst, "/"))
	}
	sort.Strings(out)
	return out, nil
}
