package hostd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRadios makes a /sys/class/rfkill with radios "name type soft hard".
func fakeRadios(t *testing.T, radios ...string) string {
	t.Helper()
	root := t.TempDir()
	for i, r := range radios {
		f := strings.Fields(r)
		dir := filepath.Join(root, "rfkill"+string(rune('0'+i)))
		os.MkdirAll(dir, 0o755)
		for name, v := range map[string]string{"name": f[0], "type": f[1], "soft": f[2], "hard": f[3]} {
			os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644)
		}
	}
	return root
}

// TestRadios: the Wi-Fi radios, a laptop's platform switch among them,
// are read apart from Bluetooth's; software switches them on, and the
// problem says what is left: a hard switch first.
func TestRadios(t *testing.T) {
	root := fakeRadios(t, "phy0 wlan 1 0", "tpacpi_wlan_sw wlan 1 0", "hci0 bluetooth 1 0")
	wlan, err := ReadRadios(root, "wlan")
	if err != nil || len(wlan) != 2 || wlan[0].Name != "phy0" || !wlan[0].Soft {
		t.Fatalf("ReadRadios = %+v, %v", wlan, err)
	}
	if p := RadioProblem(wlan); !strings.Contains(p, "airplane mode, phy0, tpacpi_wlan_sw") {
		t.Errorf("problem = %q", p)
	}
	changed, err := SetSoft(wlan, false)
	if err != nil || strings.Join(changed, ",") != "phy0,tpacpi_wlan_sw" {
		t.Errorf("SetSoft = %v, %v", changed, err)
	}
	wlan, _ = ReadRadios(root, "wlan")
	if AnySoft(wlan) || RadioProblem(wlan) != "" {
		t.Errorf("after switching on: %+v", wlan)
	}
	if all, _ := ReadRadios(root, ""); len(all) != 3 || !all[0].Soft {
		t.Errorf("Bluetooth's switch was changed too: %+v", all)
	}
	if changed, _ := SetSoft(wlan, false); len(changed) != 0 {
		t.Errorf("switched on what was on: %v", changed)
	}

	hard := fakeRadios(t, "phy0 wlan 0 1")
	wlan, _ = ReadRadios(hard, "wlan")
	if p := RadioProblem(wlan); !strings.Contains(p, "switched off by the laptop's switch or its firmware (phy0)") {
		t.Errorf("problem = %q", p)
	}
	if r, err := ReadRadios(filepath.Join(hard, "none"), "wlan"); r != nil || err != nil {
		t.Errorf("no rfkill class: %v, %v", r, err)
	}
}
