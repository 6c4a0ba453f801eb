package layout

import (
	"fmt"
	"net"
)

// The host-only link between the host and its guests: a bridge on the
// host with an address of its own, a tap device per guest on it, and a
// second NIC in each guest. The guests reach the host's shares and API
// there, at an address that does not change; QEMU's user network stays
// their way to the internet.
const (
	// GuestLinkBridge is the bridge's name on the host.
	GuestLinkBridge = "thbr0"
	// GuestLinkHost is the host's address on the link.
	GuestLinkHost = "10.0.3.1"
	// GuestLinkPrefix is the link's prefix length.
	GuestLinkPrefix = 24
	// MaxGuestLinks is how many guests the link addresses (10.0.3.10
	// up to 10.0.3.254).
	MaxGuestLinks = 245
)

// GuestLinkNet is the link's network, 10.0.3.0/24.
func GuestLinkNet() *net.IPNet {
	_, n, _ := net.ParseCIDR(fmt.Sprintf("%s/%d", GuestLinkHost, GuestLinkPrefix))
	return n
}

// GuestLinkTap names the tap device of the i-th guest (profile order).
func GuestLinkTap(i int) string { return fmt.Sprintf("thvm%d", i) }

// GuestLinkAddr is the address the i-th guest gets on the link (DHCP, a
// fixed lease): 10.0.3.10 for the first.
func GuestLinkAddr(i int) net.IP { return net.IPv4(10, 0, 3, byte(10+i)).To4() }

// GuestLinkMAC is the address of a guest's NIC on the link: GuestMAC's
// bytes after a 52:54:01 prefix (locally administered, as QEMU's).
func GuestLinkMAC(name string) string { return "52:54:01" + GuestMAC(name)[8:] }
