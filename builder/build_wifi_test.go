package builder

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/profiles"
)

// TestWifiSecretsOffTheBootFiles: hostd's configuration (in the
// initramfs) names the networks without their passphrases, which go only
// into the first-boot record for the data partition.
func TestWifiSecretsOffTheBootFiles(t *testing.T) {
	p, diags := profiles.Parse("../profiles/testdata/wifi.hcl", profiles.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	const psk = "correct horse battery staple"
	hcfg, err := HostdConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hcfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(psk)) || hcfg.Wifi == nil || len(hcfg.Wifi.Networks) != 2 {
		t.Errorf("hostd's configuration:\n%s", b)
	}
	fb, err := FirstBoot(p)
	if err != nil {
		t.Fatal(err)
	}
	var got config.FirstBoot
	if err := json.Unmarshal(fb, &got); err != nil || got.WifiPassphrases["home"] != psk || got.WifiPassphrases["office"] != psk {
		t.Errorf("first boot = %s (%v)", fb, err)
	}
	names := requestedNames(t, p)
	for _, want := range []string{"wpasupplicant", RegulatoryPackage} {
		if !slices.Contains(names, want) {
			t.Errorf("packages %v lack %s", names, want)
		}
	}
}
