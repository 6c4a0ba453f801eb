//go:build linux

package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/thinhost/thinhost/images/flash"

	"github.com/thinhost/thinhost/internal/units"
)

func flashCmd(e *env) *cobra.Command {
	var (
		list     bool
		yes      bool
		noVerify bool
		opts     flash.Options
	)
	cmd := &cobra.Command{
		Use:   "flash IMAGE DEVICE | flash --list",
		Short: "Write an image to a USB stick (or another whole disk), safely, then verify it",
		Long: `flash writes IMAGE to DEVICE, a whole disk such as /dev/sdb, for real hardware.

It refuses a device with anything mounted, the disk of the running system or
of the image, a device smaller than the image, a partition or a regular file
(unless --allow-partition or --allow-file), and a non-removable disk (unless
--allow-fixed). It shows the device's model, size and serial and asks you to
type its name; without a terminal it needs --yes.

Only the image's data is written, plus zeros where old bytes could be misread
(partition tables, filesystem headers); the backup GPT moves to the end of a
larger device. Everything written is read back and compared (--no-verify
skips that). Use --list to see the disks you could mean.

With --keep-data, flash updates a stick that already holds a thinhost image:
only its boot and system partitions are written (the ESP last), and its data
partition and partition table stay byte for byte as they were. It is refused,
with the first difference named, when the image's partitions are not where
the stick's are.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				return listDisks(e)
			}
			job, err := flash.Host.Prepare(args[0], args[1], opts)
			if err != nil {
				return err
			}
			defer job.Close()
			t := job.Target
			fmt.Fprintf(e.stderr, "thinhost: about to write %s (%s) to\n  %s\n", args[0], units.Bytes(job.Plan.ImageSize), t.Describe())
			if k := job.Kept; k != nil {
				fmt.Fprintf(e.stderr, "thinhost: the boot and system partitions of %s will be rewritten; its data partition (partition %d, %s) and partition table stay as they are; %s of data and %s of zeros will be written\n",
					t.Path, k.Index, units.Bytes(int64(k.End-k.Start+1)*512), units.Bytes(job.Plan.ImageBytes), units.Bytes(job.Plan.ZeroBytes))
			} else {
				fmt.Fprintf(e.stderr, "thinhost: EVERYTHING on %s will be lost; %s of data and %s of zeros will be written\n",
					t.Path, units.Bytes(job.Plan.ImageBytes), units.Bytes(job.Plan.ZeroBytes))
			}
			if !yes {
				if err := confirm(e, t); err != nil {
					return err
				}
			}
			wbar, vbar := newBar(e.stderr, "write ", job.Plan.TotalBytes), newBar(e.stderr, "verify", job.Plan.VerifyBytes)
			res, err := job.Run(cmd.Context(), noVerify, wbar, vbar)
			if err != nil {
				return err
			}
			if res.RereadErr != nil {
				fmt.Fprintf(e.stderr, "thinhost: warning: %v; unplug and replug the device before using it\n", res.RereadErr)
			}
			fmt.Fprintf(e.stdout, "wrote %s to %s in %s (%s/s)\n", units.Bytes(res.Written), t.Path,
				res.WriteTime.Round(time.Millisecond), units.Bytes(rate(res.Written, res.WriteTime)))
			if noVerify {
				fmt.Fprintln(e.stdout, "not verified (--no-verify)")
			} else {
				fmt.Fprintf(e.stdout, "verified %s in %s: %s holds the image\n", units.Bytes(res.Verified), res.VerifyTime.Round(time.Millisecond), t.Path)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&list, "list", false, "list the disks a user could mean, removable ones first")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&noVerify, "no-verify", false, "skip reading the device back")
	fl.BoolVar(&opts.AllowFixed, "allow-fixed", false, "allow a disk the kernel does not call removable")
	fl.BoolVar(&opts.AllowPartition, "allow-partition", false, "allow writing into a partition")
	fl.BoolVar(&opts.AllowFile, "allow-file", false, "allow writing into a regular file")
	fl.BoolVar(&opts.KeepData, "keep-data", false, "update a stick that holds a thinhost image: rewrite its boot and system partitions, keep its data partition and partition table byte for byte (refused when the image's layout differs)")
	return cmd
}

func confirm(e *env, d *flash.Disk) error {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("%w %s: no terminal to confirm on; pass --yes if you are sure", flash.ErrRefused, d.Path)
	}
	name := d.Name
	if name == "" {
		name = d.Path
	}
	fmt.Fprintf(e.stderr, "Type %q to write it: ", name)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("%w %s: not confirmed; nothing was written", flash.ErrRefused, d.Path)
	}
	return nil
}

func listDisks(e *env) error {
	disks, err := flash.Host.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSIZE\tTRANSPORT\tREMOVABLE\tMODEL\tSERIAL\tIN USE")
	for _, d := range disks {
		use := strings.Join(d.InUse(), "; ")
		if use == "" {
			use = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", d.Path, units.Bytes(d.Size), dash(d.Transport), d.Removable, dash(d.Model), dash(d.Serial), use)
	}
	return tw.Flush()
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}
