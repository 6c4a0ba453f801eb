//go:build linux

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/builder"
)

func lockCmd(e *env) *cobra.Command {
	var (
		pf       profileFlags
		cacheDir string
		lockPath string
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "lock PROFILE",
		Short: "Pin the host's Debian packages: resolve them against the archive and write PROFILE.lock",
		Long: `lock reads the profile's packages block (suites, components, extra packages, the
kernel package) and thinhost's own set (QEMU, OVMF, swtpm, Samba, e2fsprogs,
systemd-boot), verifies each suite's InRelease against Debian's archive keys,
checks the Packages indexes against the signed sums, resolves Depends and
Pre-Depends, and writes every package (name, version, architecture, suite,
sha256) to the lock file beside the profile (examples/laptop.hcl ->
examples/laptop.lock). It prints what changed. Commit the lock file: builds
from it take exactly those packages, months later too.

--keep keeps the locked versions that still satisfy (only new or changed
requests move); without it every package moves to the newest the suites
serve.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prof, err := pf.load(e, args[0])
			if err != nil {
				return err
			}
			res, err := builder.Lock(cmd.Context(), builder.LockConfig{
				Profile: prof, LockPath: lockPath, CacheDir: cacheDir, Keep: keep, Log: e.logger(), Progress: downloadBars(e.stderr),
			})
			if err != nil {
				return fmt.Errorf("lock %s: %w", args[0], err)
			}
			var size int64
			for _, p := range res.Lock.Packages {
				size += p.Size
			}
			fmt.Fprintf(e.stdout, "%s: %d packages (%s of .debs) from %d suite(s)\n", res.Path, len(res.Lock.Packages), fmt.Sprintf("%.1f MiB", float64(size)/(1<<20)), len(res.Lock.Sources))
			if len(res.Changes) == 0 {
				fmt.Fprintln(e.stdout, "no change")
			}
			for _, c := range res.Changes {
				fmt.Fprintln(e.stdout, c)
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&cacheDir, "cache", "", "cache directory (default $THINHOST_CACHE, else the user cache dir)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep locked versions that still satisfy")
	cmd.Flags().StringVar(&lockPath, "lock", "", "the lock file (default PROFILE.lock beside the profile)")
	return cmd
}
