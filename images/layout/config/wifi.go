package config

import (
	"fmt"
	"regexp"
	"strings"
)

// The Wifi block's rules, which the builder checks at the profile's file
// and line and hostd checks again before any of it reaches
// wpa_supplicant.

// Security modes of a network (WifiNetwork.Security).
const (
	WifiWPA2     = "wpa2"
	WifiWPA3     = "wpa3"
	WifiWPA2WPA3 = "wpa2-wpa3"
	// WifiOpen networks have no passphrase (a café's, a train's, often
	// behind a captive portal the guest's browser answers).
	WifiOpen = "open"
)

// WifiSecurities are the modes a profile may name, the default first.
var WifiSecurities = []string{WifiWPA2WPA3, WifiWPA2, WifiWPA3, WifiOpen}

var (
	wifiNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	wifiIfaceRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)
	wifiCountryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// CheckWifiName says whether name can label a network.
func CheckWifiName(name string) error {
	if !wifiNameRE.MatchString(name) {
		return fmt.Errorf("network name %q must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// CheckSSID says whether ssid can name a network: 1 to 32 bytes.
func CheckSSID(ssid string) error {
	if ssid == "" || len(ssid) > 32 {
		return fmt.Errorf("the SSID %q must be 1 to 32 bytes long, not %d", ssid, len(ssid))
	}
	return nil
}

// CheckPassphrase says whether p can be a WPA2/WPA3-personal passphrase:
// 8 to 63 printable ASCII characters, which every access point takes.
func CheckPassphrase(p string) error {
	if len(p) < 8 || len(p) > 63 {
		return fmt.Errorf("a Wi-Fi passphrase has 8 to 63 characters, not %d", len(p))
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("a Wi-Fi passphrase is printable ASCII (letters, digits, spaces and punctuation), with no control or non-ASCII characters")
		}
	}
	return nil
}

// CheckWifiSecurity says whether s is one of WifiSecurities.
func CheckWifiSecurity(s string) error {
	for _, v := range WifiSecurities {
		if s == v {
			return nil
		}
	}
	return fmt.Errorf("security %q must be one of %s", s, strings.Join(WifiSecurities, ", "))
}

// Check says what is wrong with w.
func (w *Wifi) Check() error {
	if w.Interface != "" && !wifiIfaceRE.MatchString(w.Interface) {
		return fmt.Errorf("wifi interface %q is not an interface name", w.Interface)
	}
	if w.Country != "" && !wifiCountryRE.MatchString(w.Country) {
		return fmt.Errorf("wifi country %q must be two capital letters (ISO 3166), such as DE", w.Country)
	}
	seen := map[string]bool{}
	for _, n := range w.Networks {
		if err := CheckWifiName(n.Name); err != nil {
			return err
		}
		if seen[n.Name] {
			return fmt.Errorf("wifi network %q is named twice", n.Name)
		}
		seen[n.Name] = true
		if err := CheckSSID(n.SSID); err != nil {
			return fmt.Errorf("wifi network %s: %w", n.Name, err)
		}
		if err := CheckWifiSecurity(n.Security); err != nil {
			return fmt.Errorf("wifi network %s: %w", n.Name, err)
		}
		if n.Priority < 0 || n.Priority > 1000 {
			return fmt.Errorf("wifi network %s: priority %d must be from 0 to 1000", n.Name, n.Priority)
		}
	}
	return nil
}

// CheckWifiCountry says whether c is a regulatory domain: two capital
// letters (ISO 3166).
func CheckWifiCountry(c string) error {
	if !wifiCountryRE.MatchString(c) {
		return fmt.Errorf("wifi country %q must be two capital letters (ISO 3166), such as DE", c)
	}
	return nil
}
