// Package wifi joins the host to wireless networks through Debian's
// wpa_supplicant, which hostd runs under its supervisor: it writes the
// supplicant's configuration from the profile's networks and the
// passphrases kept on the data partition, speaks its control socket, runs
// DHCP on the link once joined, and says what went wrong (a refused
// passphrase above all) instead of retrying in silence.
//
// wpa_supplicant rather than iwd: iwd is driven over D-Bus alone, and the
// host runs no D-Bus; wpa_supplicant's control socket is a plain-text
// datagram protocol hostd speaks in a few lines, and its Debian build
// has WPA2 and WPA3 (SAE) personal.
package wifi

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/thinhost/thinhost/hostd/config"
)

// Security modes of a network (config.WifiNetwork.Security).
const (
	WPA2     = "wpa2"
	WPA3     = "wpa3"
	WPA2WPA3 = "wpa2-wpa3"
)

// Securities are the modes a profile may name, the default first.
var Securities = []string{WPA2WPA3, WPA2, WPA3}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	ifaceRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// CheckName says whether name can label a network.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
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

// CheckSecurity says whether s is one of Securities.
func CheckSecurity(s string) error {
	for _, v := range Securities {
		if s == v {
			return nil
		}
	}
	return fmt.Errorf("security %q must be one of %s", s, strings.Join(Securities, ", "))
}

// Check says what is wrong with w, the builder's word hostd checks again
// before any of it reaches the supplicant's configuration.
func Check(w *config.Wifi) error {
	if w.Interface != "" && !ifaceRE.MatchString(w.Interface) {
		return fmt.Errorf("wifi interface %q is not an interface name", w.Interface)
	}
	if w.Country != "" && !countryRE.MatchString(w.Country) {
		return fmt.Errorf("wifi country %q must be two capital letters (ISO 3166), such as DE", w.Country)
	}
	seen := map[string]bool{}
	for _, n := range w.Networks {
		if err := CheckName(n.Name); err != nil {
			return err
		}
		if seen[n.Name] {
			return fmt.Errorf("wifi network %q is named twice", n.Name)
		}
		seen[n.Name] = true
		if err := CheckSSID(n.SSID); err != nil {
			return fmt.Errorf("wifi network %s: %w", n.Name, err)
		}
		if err := CheckSecurity(n.Security); err != nil {
			return fmt.Errorf("wifi network %s: %w", n.Name, err)
		}
		if n.Priority < 0 || n.Priority > 1000 {
			return fmt.Errorf("wifi network %s: priority %d must be from 0 to 1000", n.Name, n.Priority)
		}
	}
	return nil
}

// Network is one network as the supplicant is given it.
type Network struct {
	config.WifiNetwork
	// Passphrase is its secret ("": not known; it is left out of the
	// supplicant's configuration).
	Passphrase string
	// Added networks came from `ctl wifi connect`, not the profile.
	Added bool
}

// PSK is WPA2's pre-shared key for a passphrase and SSID (PBKDF2-SHA1,
// 4096 rounds, 256 bits; what wpa_passphrase prints), so the supplicant's
// configuration holds no passphrase in WPA2-only networks.
func PSK(passphrase, ssid string) []byte {
	k, err := pbkdf2.Key(sha1.New, passphrase, []byte(ssid), 4096, 32)
	if err != nil {
		// Only a key length or FIPS mode could refuse these inputs.
		panic(err)
	}
	return k
}

// fields are the supplicant's settings for n, as "name=value" lines
// whose values are hex strings or numbers: nothing from a profile or a
// peer reaches the file as syntax.
func fields(n Network) []string {
	out := []string{"ssid=" + hex.EncodeToString([]byte(n.SSID))}
	if n.Hidden {
		out = append(out, "scan_ssid=1")
	}
	psk := "psk=" + hex.EncodeToString(PSK(n.Passphrase, n.SSID))
	// SAE takes the passphrase itself, in hex.
	sae := "sae_password=" + hex.EncodeToString([]byte(n.Passphrase))
	switch n.Security {
	case WPA2:
		out = append(out, "key_mgmt=WPA-PSK", psk, "ieee80211w=1")
	case WPA3:
		out = append(out, "key_mgmt=SAE", sae, "ieee80211w=2")
	default:
		out = append(out, "key_mgmt=WPA-PSK SAE", psk, sae, "ieee80211w=1")
	}
	if n.Priority > 0 {
		out = append(out, fmt.Sprintf("priority=%d", n.Priority))
	}
	return out
}

// Render is wpa_supplicant's configuration: its control socket in
// ctrlDir, the country, and the networks with a passphrase, in order.
// IDs maps the supplicant's network ids (their order in the file) to
// the index in networks.
func Render(country, ctrlDir string, networks []Network) (conf []byte, ids []int, err error) {
	if country != "" && !countryRE.MatchString(country) {
		return nil, nil, fmt.Errorf("wifi country %q must be two capital letters", country)
	}
	if strings.ContainsAny(ctrlDir, "\n\x00 ") || !strings.HasPrefix(ctrlDir, "/") {
		return nil, nil, fmt.Errorf("control directory %q must be an absolute path without spaces", ctrlDir)
	}
	var b bytes.Buffer
	b.WriteString("# Written by hostd at each start; changes are lost.\n")
	fmt.Fprintf(&b, "ctrl_interface=DIR=%s GROUP=0\n", ctrlDir)
	b.WriteString("update_config=0\nap_scan=1\n")
	// SAE's hash-to-element and hunting-and-pecking both: WPA3 access
	// points that require either.
	b.WriteString("sae_pwe=2\n")
	if country != "" {
		fmt.Fprintf(&b, "country=%s\n", country)
	}
	for i, n := range networks {
		if n.Passphrase == "" {
			continue
		}
		if err := CheckSSID(n.SSID); err != nil {
			return nil, nil, err
		}
		if err := CheckPassphrase(n.Passphrase); err != nil {
			return nil, nil, fmt.Errorf("wifi network %s: %w", n.Name, err)
		}
		b.WriteString("\nnetwork={\n")
		for _, f := range fields(n) {
			b.WriteString("\t" + f + "\n")
		}
		b.WriteString("}\n")
		ids = append(ids, i)
	}
	return b.Bytes(), ids, nil
}
