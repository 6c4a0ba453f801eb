// Package cli is the thinhost command line: one file per subcommand. Main
// takes its arguments and streams, so tests run the real CLI in-process;
// nothing below it calls os.Exit.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// errReported is returned by commands that already printed their problem
// (profile diagnostics, a failed boot check): Main exits non-zero without
// printing it again.
var errReported = errors.New("reported")

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	verbose        bool
}

func (e *env) logger() *slog.Logger {
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// Main runs the thinhost CLI with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "thinhost",
		Short: "Build, boot and flash thinhost images: a tiny host that owns the laptop and runs Windows as a guest",
		Long: `thinhost builds a bootable GPT/UEFI disk image from an HCL profile. The image boots a
tiny immutable Linux host (u-root and hostd) that keeps the user's files and runs
Windows as a KVM guest.

  thinhost validate examples/qemu-test.hcl
  thinhost build examples/qemu-test.hcl -o out/test.img
  thinhost run out/test.img --check`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&e.verbose, "verbose", "v", false, "log debug detail (and the console during run --check)")
	root.AddCommand(validateCmd(e), ctlCmd(e))
	addImageCommands(root, e)
	root.SetArgs(terraformStyle(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintln(stderr, "thinhost:", err)
		return 1
	}
}

// terraformStyle accepts the single-dash spellings that Terraform and Packer
// users type (-var k=v, -var-file=f) by rewriting them to --var and
// --var-file; anything after "--" is left alone.
func terraformStyle(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		for _, name := range []string{"-var", "-var-file"} {
			if a == name || strings.HasPrefix(a, name+"=") {
				a = "-" + a
				break
			}
		}
		out = append(out, a)
	}
	return out
}
