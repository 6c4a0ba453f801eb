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
	"strings"

	"github.com/thinhost/thinhost/images/layout/config"
)

// Network is one network as the supplicant is given it.
type Network struct {
	config.WifiNetwork
	// Passphrase is its secret ("": not known; it is left out of the
	// supplicant's configuration).
	Passphrase string
	// Added networks came from `ctl wifi connect`, not the profile.
	Added bool
	// Gone networks were forgotten (ctl wifi forget): kept in place so
	// the others keep their indexes, never used again.
	Gone bool
}

// Usable says whether the supplicant can be given n: it is open, or its
// passphrase is known.
func (n Network) Usable() bool {
	return !n.Gone && (n.Security == config.WifiOpen || n.Passphrase != "")
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

// Bgscan is wpa_supplicant's background scan for each network.
const Bgscan = "simple:30:-70:3600"

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
	case config.WifiOpen:
		out = append(out, "key_mgmt=NONE")
	case config.WifiWPA2:
		out = append(out, "key_mgmt=WPA-PSK", psk, "ieee80211w=1")
	case config.WifiWPA3:
		out = append(out, "key_mgmt=SAE", sae, "ieee80211w=2")
	default:
		out = append(out, "key_mgmt=WPA-PSK SAE", psk, sae, "ieee80211w=1")
	}
	if n.Priority > 0 {
		out = append(out, fmt.Sprintf("priority=%d", n.Priority))
	}
	// Roaming between a network's access points (a house's mesh, an
	// office's floors): scan every 30 s while the signal is below -70 dBm,
	// every hour above it.
	return append(out, "bgscan="+hex.EncodeToString([]byte(Bgscan)))
}

// Render is wpa_supplicant's configuration: its control socket in
// ctrlDir, the country, and the networks with a passphrase, in order.
// IDs maps the supplicant's network ids (their order in the file) to
// the index in networks.
func Render(country, ctrlDir string, networks []Network) (conf []byte, ids []int, err error) {
	if country != "" && config.CheckWifiCountry(country) != nil {
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
		if !n.Usable() {
			continue
		}
		if err := config.CheckSSID(n.SSID); err != nil {
			return nil, nil, err
		}
		if n.Security != config.WifiOpen {
			if err := config.CheckPassphrase(n.Passphrase); err != nil {
				return nil, nil, fmt.Errorf("wifi network %s: %w", n.Name, err)
			}
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
