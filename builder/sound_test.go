package builder

import (
	"slices"
	"testing"

	"github.com/thinhost/thinhost/profiles"
)

// TestUCMPackage: ALSA's use-case configurations come with sound on a
// driver set that may meet a real card (laptop, generic), not on virtio's
// or without a guest that plays.
func TestUCMPackage(t *testing.T) {
	names := func(p *profiles.Profile) []string { return requestedNames(t, p) }
	p := &profiles.Profile{VMs: []*profiles.VM{{Name: "w", Sound: true}}}
	p.Packages.Kernel = "linux-image-amd64"
	for hw, want := range map[string]bool{"laptop": true, "generic": true, "": true, "virtio": false, "none": false} {
		p.Host.Kernel.Hardware = hw
		if got := slices.Contains(names(p), UCMPackage); got != want {
			t.Errorf("hardware %q: %s requested = %v, want %v", hw, UCMPackage, got, want)
		}
	}
	p.Host.Kernel.Hardware = "laptop"
	p.VMs[0].Sound = false
	if slices.Contains(names(p), UCMPackage) {
		t.Errorf("%s requested without sound", UCMPackage)
	}
}
