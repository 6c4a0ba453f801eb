package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thinhost/thinhost/internal/secureboot"
)

func keysCmd(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "keys DIR",
		Short: "Make a Secure Boot key set (PK, KEK, db) for secure_boot = \"own\"",
		Long: `keys makes a new Secure Boot key set in DIR: PK, KEK and db, each an RSA-2048
key (NAME.key, readable by you only) and a self-signed certificate (NAME.crt),
valid for 20 years. It never overwrites a key.

A profile uses the set with

    boot {
      secure_boot = "own"
      keys        = "DIR"
    }

thinhost build then signs systemd-boot and the host's unified kernel image
with db's key and puts the enrollment files on the ESP; the laptop's firmware
takes them from setup mode (the how-to is in the README and on the stick).
Keep DIR safe and backed up: whoever holds db.key can sign what your laptop
boots, and a lost set means resetting the firmware's keys to update.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := secureboot.Generate(args[0], name)
			if err != nil {
				return fmt.Errorf("make keys: %w", err)
			}
			for _, p := range []secureboot.Pair{k.PK, k.KEK, k.DB} {
				fmt.Fprintf(e.stdout, "%s: %s, until %s\n", args[0], p.Cert.Subject.CommonName, p.Cert.NotAfter.Format("2006-01-02"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "thinhost", "a name for the certificates' subjects (your name, or the laptop's)")
	return cmd
}
