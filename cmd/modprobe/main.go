// Command modprobe is the thinhost image's modprobe: it loads kernel
// modules of the image by name or alias, with their dependencies. hostd
// makes it the kernel's module helper (modules.ModprobePath).
//
//	modprobe [-q] [--] MODULE|ALIAS...
package main

import (
	"os"

	"github.com/thinhost/thinhost/hostd/modules"
)

func main() {
	os.Exit(modules.Modprobe("/lib/modules", os.Args[1:], os.Stderr))
}
