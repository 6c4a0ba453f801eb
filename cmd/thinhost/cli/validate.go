package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/profiles"
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
			hw := prof.Host.Kernel.Hardware
			if hw == "" {
				hw = profiles.DefaultHardware
			}
			fmt.Fprintf(e.stdout, "%s: valid (host %q, %d artifact(s), drivers %s + %d module(s), %d vm(s))\n",
				args[0], prof.Host.Hostname, len(prof.Artifacts), hw, len(prof.Host.Kernel.Modules), len(prof.VMs))
			return nil
		},
	}
	pf.register(cmd)
	return cmd
}
