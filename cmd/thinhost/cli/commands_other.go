//go:build !linux

package cli

import "github.com/spf13/cobra"

// addImageCommands adds nothing here: building, booting and flashing
// images need Linux. thinhost on Windows and macOS is validate and ctl,
// which talk to a host (from inside its Windows guest, for one).
func addImageCommands(root *cobra.Command, e *env) {}
