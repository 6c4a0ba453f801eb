// Package guestlink is the host-only link between the host and its
// guests (images/layout's GuestLink*): a bridge with the host's address, a
// persistent tap device per guest on it, which QEMU attaches to (with
// vhost-net when the kernel has it), and a DHCP server that gives each
// guest its fixed address and nothing else — no router, no DNS, so a
// guest's way to the internet stays QEMU's user network.
//
// The guests reach the host's shares and API here, through the kernel's
// network stack instead of QEMU's user-space NAT.
package guestlink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Guest is one guest on the link.
type Guest struct {
	Name string
	// Tap is its tap device; MAC its NIC's address; IP what DHCP gives it.
	Tap string
	MAC net.HardwareAddr
	IP  net.IP
}

// Link is the link once set up.
type Link struct {
	Bridge string
	Host   net.IP
	Net    *net.IPNet
	Guests []Guest

	log    *slog.Logger
	mu     sync.Mutex
	server *server4.Server
}

// Tap returns the tap device of the named guest.
func (l *Link) Tap(name string) (string, bool) {
	if l == nil {
		return "", false
	}
	for _, g := range l.Guests {
		if g.Name == name {
			return g.Tap, true
		}
	}
	return "", false
}

// FromGuest says whether a connection from remote to local is a guest's
// on the link: arriving at the host's link address from the link's
// network. A TCP peer elsewhere cannot pass for one: the host's answers to
// a link address go out on the bridge, never back to it.
func (l *Link) FromGuest(local, remote net.Addr) bool {
	if l == nil {
		return false
	}
	la, ok1 := local.(*net.TCPAddr)
	ra, ok2 := remote.(*net.TCPAddr)
	return ok1 && ok2 && la.IP.Equal(l.Host) && l.Net.Contains(ra.IP)
}

// Lease answers a DHCP message from the link: an offer to a discover, an
// acknowledgement to a request for the guest's own address (a refusal
// otherwise), nothing for a MAC that is not a guest's or any other
// message. A pure function of the guests and the message.
func Lease(guests []Guest, host net.IP, mask net.IPMask, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil
	}
	var g *Guest
	for i := range guests {
		if strings.EqualFold(guests[i].MAC.String(), req.ClientHWAddr.String()) {
			g = &guests[i]
		}
	}
	if g == nil {
		return nil, nil
	}
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
		want := req.RequestedIPAddress()
		if want == nil {
			want = req.ClientIPAddr
		}
		if sid := req.ServerIdentifier(); (sid != nil && !sid.Equal(host)) || want == nil || !want.Equal(g.IP) {
			if sid != nil && !sid.Equal(host) {
				return nil, nil // a request to another server
			}
			typ = dhcpv4.MessageTypeNak
		}
	default:
		return nil, nil
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithServerIP(host),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(host)),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods, dhcpv4.WithYourIP(g.IP), dhcpv4.WithNetmask(mask),
			dhcpv4.WithLeaseTime(uint32((24 * time.Hour).Seconds())))
	}
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// serve answers DHCP on the bridge.
func (l *Link) serve() error {
	mask := l.Net.Mask
	handler := func(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		resp, err := Lease(l.Guests, l.Host, mask, req)
		if err != nil || resp == nil {
			if err != nil {
				l.log.Warn("guest link dhcp", "err", err)
			}
			return
		}
		// The guest has no address yet: answer by broadcast on the
		// bridge (the socket is bound to it).
		to := peer
		if up, ok := peer.(*net.UDPAddr); !ok || up.IP.IsUnspecified() || req.IsBroadcast() || resp.MessageType() == dhcpv4.MessageTypeNak {
			to = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
		}
		if _, err := conn.WriteTo(resp.ToBytes(), to); err != nil {
			l.log.Warn("guest link dhcp reply", "err", err)
			return
		}
		l.log.Info("guest link dhcp", "mac", req.ClientHWAddr.String(), "type", resp.MessageType(), "ip", resp.YourIPAddr)
	}
	srv, err := server4.NewServer(l.Bridge, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		return fmt.Errorf("serve DHCP on %s: %w", l.Bridge, err)
	}
	l.mu.Lock()
	l.server = srv
	l.mu.Unlock()
	go func() {
		if err := srv.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.log.Warn("guest link dhcp stopped", "err", err)
		}
	}()
	return nil
}

// Close stops the DHCP server (the bridge and taps stay, for the guests
// still attached).
func (l *Link) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.server != nil {
		return l.server.Close()
	}
	return nil
}
