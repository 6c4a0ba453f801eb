package builder

import (
	"testing"

	"github.com/thinhost/thinhost/profiles"
)

// TestCmdline: consoles first (the last is /dev/console), then what every
// host has, then the profile's own words, which come last and so win.
func TestCmdline(t *testing.T) {
	p := &profiles.Profile{}
	p.Host.Console = []string{"tty0", "ttyS0,115200"}
	p.Host.Kernel.Cmdline = "quiet transparent_hugepage=always"
	want := "console=tty0 console=ttyS0,115200 panic=10 transparent_hugepage=madvise quiet transparent_hugepage=always"
	if got := Cmdline(p); got != want {
		t.Errorf("Cmdline = %q, want %q", got, want)
	}
}
