package initramfs

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/thinhost/thinhost"
	"github.com/u-root/u-root/pkg/cpio"
)

// programsKey identifies the initramfs's programs — the busybox of hostd
// and the u-root commands, with init's links — by what they are built
// from: the Go toolchain and its settings, the command list, and the
// thinhost module's go.mod, go.sum (which pin u-root's sources in the
// module cache) and the source of the packages the programs import, with
// the files they embed. The same key means the same bytes: the
// build is reproducible.
func programsKey(ctx context.Context, srcDir string, cmds []string) (string, error) {
	// Within the set a thinhost outside a checkout carries: Go files and
	// what they embed (the host's page), not tests or their data.
	return thinhost.SourceKey(ctx, srcDir, thinhost.HostSourceRoots, "thinhost-initramfs-programs-v2", strings.Join(cmds, " "))
}

// compose writes the final cpio: the programs archive's records, then
// the staged files (hostd's config, the kernel modules) with the
// directories they need, all with reproducible metadata.
func compose(programs string, files []stagedFile, out string) error {
	pf, err := os.Open(programs)
	if err != nil {
		return err
	}
	defer pf.Close()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(pf))
	if err != nil {
		return fmt.Errorf("read %s: %w", programs, err)
	}
	of, err := os.Create(out)
	if err != nil {
		return err
	}
	defer of.Close()
	w := cpio.Newc.Writer(of)
	if err := cpio.WriteRecords(w, recs); err != nil {
		return err
	}
	var added []cpio.Record
	for _, f := range files {
		data, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		added = append(added, cpio.MakeReproducible(cpio.StaticRecord(data, cpio.Info{Name: f.dst, Mode: cpio.S_IFREG | mode})))
	}
	if err := cpio.WriteRecordsAndDirs(w, added); err != nil {
		return err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	return of.Close()
}

// stagedFile is a file of the build machine, its path in the image and
// its permissions there (0: 0644).
type stagedFile struct {
	src, dst string
	mode     uint64
}
