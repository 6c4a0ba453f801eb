package cli

import "github.com/spf13/cobra"

// addImageCommands adds the commands that build, boot and flash images:
// they need Linux (u-root's builder, QEMU, loop devices and block devices).
func addImageCommands(root *cobra.Command, e *env) {
	root.AddCommand(buildCmd(e), lockCmd(e), runCmd(e), flashCmd(e), vmCmd(e), keysCmd(e))
}
