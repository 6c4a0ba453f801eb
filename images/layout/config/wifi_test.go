package config

import (
	"strings"
	"testing"
)

func TestWifiCheck(t *testing.T) {
	good := &Wifi{Interface: "wlan0", Country: "FR", Networks: []WifiNetwork{{Name: "home", SSID: "Home", Security: WifiWPA2WPA3}}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Wifi{
		{Interface: "wlan0;rm"},
		{Country: "France"},
		{Networks: []WifiNetwork{{Name: "Home", SSID: "x", Security: WifiWPA2}}},
		{Networks: []WifiNetwork{{Name: "a", SSID: strings.Repeat("x", 33), Security: WifiWPA2}}},
		{Networks: []WifiNetwork{{Name: "a", SSID: "x", Security: "wep"}}},
		{Networks: []WifiNetwork{{Name: "a", SSID: "x", Security: WifiWPA2}, {Name: "a", SSID: "y", Security: WifiWPA2}}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("Check(%+v) passed", bad)
		}
	}
	for _, p := range []string{"short", strings.Repeat("x", 64), "tab\there!", "naïve password"} {
		if CheckPassphrase(p) == nil {
			t.Errorf("passphrase %q passed", p)
		}
	}
}
