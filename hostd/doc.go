// Package hostd is the thinhost host daemon, started by u-root's init as the
// uinit of every thinhost image (see cmd/hostd). It loads the kernel modules
// the profile names, watches the ACPI power button, announces readiness on
// the console with the stable line [ReadyLine], and powers the machine off
// cleanly when the button is pressed or a shutdown is requested.
//
// hostd reads only its runtime configuration (images/layout/config) and the shared
// disk layout (images/layout); it never imports the builder or HCL.
package hostd

import "github.com/thinhost/thinhost/hostd/api"

// ReadyLine is printed on the console once hostd is up (api.ReadyLine,
// where programs that read the console find it).
const ReadyLine = api.ReadyLine
