package guestlink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/thinhost/thinhost/images/layout"
)

// Modules are the kernel modules the link needs: the bridge and the
// guests' taps.
var Modules = []string{"bridge", "tun"}

// Vhost reports whether QEMU can move the guests' packets in the kernel
// (/dev/vhost-net, once vhost_net is loaded).
func (l *Link) Vhost() bool {
	_, err := os.Stat("/dev/vhost-net")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("guest link: vhost-net", "err", err)
	}
	return err == nil
}

// Setup makes the link for the named guests (profile order: the i-th gets
// layout.GuestLinkTap(i) and GuestLinkAddr(i)) and starts its DHCP
// server. It keeps what exists (a bridge or tap of the same name, the
// address) so it may run again; the kernel needs Modules.
func Setup(log *slog.Logger, names []string) (*Link, error) {
	if len(names) > layout.MaxGuestLinks {
		return nil, fmt.Errorf("set up the guest link: %d guests, at most %d", len(names), layout.MaxGuestLinks)
	}
	l := &Link{Bridge: layout.GuestLinkBridge, Host: net.ParseIP(layout.GuestLinkHost).To4(), Net: layout.GuestLinkNet(), log: log}
	br, err := netlink.LinkByName(l.Bridge)
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = l.Bridge
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w (the kernel needs the bridge module)", l.Bridge, err)
		}
		if br, err = netlink.LinkByName(l.Bridge); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", l.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.Host, Mask: l.Net.Mask}}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return nil, fmt.Errorf("give %s the address %s: %w", l.Bridge, addr.IPNet, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", l.Bridge, err)
	}
	for i, name := range names {
		mac, _ := net.ParseMAC(layout.GuestLinkMAC(name))
		g := Guest{Name: name, Tap: layout.GuestLinkTap(i), MAC: mac, IP: layout.GuestLinkAddr(i)}
		tap, err := netlink.LinkByName(g.Tap)
		if err != nil {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = g.Tap
			t := &netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP,
				Flags: netlink.TUNTAP_DEFAULTS | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_NO_PI}
			if err := netlink.LinkAdd(t); err != nil {
				return nil, fmt.Errorf("create tap %s for vm %s: %w (the kernel needs the tun module)", g.Tap, name, err)
			}
			if tap, err = netlink.LinkByName(g.Tap); err != nil {
				return nil, fmt.Errorf("create tap %s: %w", g.Tap, err)
			}
		}
		if err := netlink.LinkSetMaster(tap, br); err != nil {
			return nil, fmt.Errorf("put tap %s on %s: %w", g.Tap, l.Bridge, err)
		}
		// Isolated ports reach the host, never each other: a guest
		// cannot pass for the host to another guest (ARP) or listen in.
		if err := netlink.LinkSetIsolated(tap, true); err != nil {
			return nil, fmt.Errorf("isolate tap %s on %s: %w", g.Tap, l.Bridge, err)
		}
		if err := netlink.LinkSetUp(tap); err != nil {
			return nil, fmt.Errorf("bring tap %s up: %w", g.Tap, err)
		}
		l.Guests = append(l.Guests, g)
	}
	if err := l.serve(); err != nil {
		return nil, err
	}
	log.Info("guest link up", "bridge", l.Bridge, "host", l.Host, "guests", len(l.Guests))
	return l, nil
}
