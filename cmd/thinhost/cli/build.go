//go:build linux

package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/builder"
	"github.com/thinhost/thinhost/internal/units"
)

func buildCmd(e *env) *cobra.Command {
	var (
		pf       profileFlags
		output   string
		cacheDir string
		lockPath string
		offline  bool
	)
	cmd := &cobra.Command{
		Use:   "build PROFILE -o IMAGE",
		Short: "Build a bootable GPT/UEFI disk image from a profile",
		Long: `build fetches what the profile names (checksummed, cached under $THINHOST_CACHE),
builds the host's initramfs with hostd, and writes a sparse raw disk image.
It writes nothing but IMAGE (atomically: a failed build leaves an old IMAGE
as it was), the system image's manifest IMAGE.manifest.json, the cache, a
temporary directory it removes, and — for a profile with a packages block —
the lock file beside the profile when there is none yet or the profile's
packages changed (see thinhost lock): the host's Debian packages then come
from the archive at the locked versions, never from this machine.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prof, err := pf.load(e, args[0])
			if err != nil {
				return err
			}
			if output == "" {
				return fmt.Errorf("build %s: no output given: add -o IMAGE", args[0])
			}
			if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
				return fmt.Errorf("create output directory: %w", err)
			}
			res, err := builder.Build(cmd.Context(), builder.Config{
				Profile:  prof,
				Output:   output,
				CacheDir: cacheDir,
				LockPath: lockPath,
				Offline:  offline,
				Log:      e.logger(),
				Progress: downloadBars(e.stderr),
			})
			if err != nil {
				return fmt.Errorf("build %s: %w", args[0], err)
			}
			printBuild(e.stdout, res)
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "the disk image to write")
	cmd.Flags().StringVar(&cacheDir, "cache", "", "artifact cache directory (default $THINHOST_CACHE, else the user cache dir)")
	cmd.Flags().BoolVar(&offline, "offline", false, "never download: fail naming every artifact missing from the cache")
	cmd.Flags().StringVar(&lockPath, "lock", "", "the packages' lock file (default PROFILE.lock beside the profile)")
	return cmd
}

func printBuild(w io.Writer, r *builder.Result) {
	fmt.Fprintf(w, "image     %s (%s, %s allocated)\n", r.Image, units.Bytes(r.ImageSize), units.Bytes(r.Allocated))
	kernel := r.KernelRelease
	if r.KernelPackage != "" {
		kernel += " from " + r.KernelPackage
	}
	fmt.Fprintf(w, "kernel    %s (%s)\n", kernel, units.Bytes(r.KernelSize))
	fmt.Fprintf(w, "initramfs %s, %d module(s)\n", units.Bytes(r.InitramfsSize), r.Modules)
	if r.Microcode > 0 {
		fmt.Fprintf(w, "microcode %s (early initrd)\n", units.Bytes(r.Microcode))
	}
	fmt.Fprintf(w, "system    %d file(s): %d module(s), %d firmware file(s); manifest %s\n", r.SystemFiles, r.LateModules, r.Firmware, r.Manifest)
	if r.Lock != "" {
		fmt.Fprintf(w, "packages  %d from %s\n", r.Packages, r.Lock)
	} else {
		fmt.Fprintln(w, "packages  from this build machine (the profile has no packages block)")
	}
	if r.EmbeddedSource != "" {
		fmt.Fprintf(w, "programs  compiled from this thinhost's own source (no checkout here), written out in %s\n", r.EmbeddedSource)
	}
	for _, p := range r.Partitions {
		fmt.Fprintf(w, "part %d    %-18s %s\n", p.Index, p.Name, units.Bytes(p.Size()))
	}
	fmt.Fprintf(w, "built in  %s\n", r.Duration.Round(1e7))
}
