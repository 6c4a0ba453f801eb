package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func validateCmd(e *env) *cobra.Command {
	var pf profileFlags
	cmd := &cobra.Command{
		Use:   "validate PROFILE",
		Short: "Check a profile and report every problem with file:line:col",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prof, err := pf.load(e, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: valid (host %q, %d artifact(s), drivers %s + %d module(s), %d vm(s))\n",
				args[0], prof.Host.Hostname, len(prof.Artifacts), prof.Host.Kernel.HardwareSet(), len(prof.Host.Kernel.Modules), len(prof.VMs))
			return nil
		},
	}
	pf.register(cmd)
	return cmd
}
