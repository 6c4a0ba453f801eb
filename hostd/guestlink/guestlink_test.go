package guestlink

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"

	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/internal/testenv"
)

func testGuests() []Guest {
	var out []Guest
	for i, name := range []string{"windows", "guest"} {
		mac, _ := net.ParseMAC(layout.GuestLinkMAC(name))
		out = append(out, Guest{Name: name, Tap: layout.GuestLinkTap(i), MAC: mac, IP: layout.GuestLinkAddr(i)})
	}
	return out
}

func TestLease(t *testing.T) {
	guests := testGuests()
	host := net.ParseIP(layout.GuestLinkHost).To4()
	mask := layout.GuestLinkNet().Mask
	discover, err := dhcpv4.NewDiscovery(guests[1].MAC)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := Lease(guests, host, mask, discover)
	if err != nil || offer == nil {
		t.Fatalf("no offer: %v", err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(net.IPv4(10, 0, 3, 11)) || !offer.ServerIdentifier().Equal(host) {
		t.Errorf("offer: %s", offer.Summary())
	}
	if len(offer.Router()) != 0 || len(offer.DNS()) != 0 {
		t.Errorf("the offer names a router or DNS: the guest's internet would leave through the link: %s", offer.Summary())
	}
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := Lease(guests, host, mask, req); err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(guests[1].IP) {
		t.Errorf("ack: %v %v", ack, err)
	}
	// Another address asked for: refused.
	req.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 3, 99)))
	if nak, err := Lease(guests, host, mask, req); err != nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("a request for another address: %v %v", nak, err)
	}
	// A request to another server, or from a stranger: no answer.
	req.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 3, 2)))
	if r, _ := Lease(guests, host, mask, req); r != nil {
		t.Errorf("answered a request to another server: %s", r.Summary())
	}
	stranger, _ := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if r, _ := Lease(guests, host, mask, stranger); r != nil {
		t.Errorf("answered a stranger: %s", r.Summary())
	}
}

func TestFromGuest(t *testing.T) {
	l := &Link{Host: net.ParseIP(layout.GuestLinkHost).To4(), Net: layout.GuestLinkNet()}
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, c := range []struct {
		local, remote string
		want          bool
	}{
		{"10.0.3.1:445", "10.0.3.10:50000", true},
		{"10.0.3.1:445", "192.168.1.5:50000", false},
		{"192.168.1.2:445", "10.0.3.10:50000", false},
		{"127.0.0.1:445", "127.0.0.1:50000", false},
	} {
		if got := l.FromGuest(tcp(c.local), tcp(c.remote)); got != c.want {
			t.Errorf("%s from %s: %v", c.local, c.remote, got)
		}
	}
	var none *Link
	if none.FromGuest(tcp("10.0.3.1:1"), tcp("10.0.3.10:2")) {
		t.Error("no link, yet a guest")
	}
}

// TestSetup makes the link in a network namespace of its own — a real
// bridge, taps and the DHCP server — twice (hostd may run it again), and
// a DHCP client on the bridge with a guest's MAC gets that guest's address
// and no router.
func TestSetup(t *testing.T) {
	if !testenv.InNetNS(t, nil) {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := Setup(log, []string{"windows", "guest"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Setup(log, []string{"windows", "guest"}); err != nil {
		t.Fatalf("again: %v", err)
	}
	defer l.Close()
	br, err := netlink.LinkByName(layout.GuestLinkBridge)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range l.Guests {
		tap, err := netlink.LinkByName(g.Tap)
		if err != nil || tap.Attrs().MasterIndex != br.Attrs().Index || tap.Type() != "tuntap" {
			t.Errorf("tap %s: %v %+v", g.Tap, err, tap)
			continue
		}
		// Guests reach the host, never each other.
		if pi, err := netlink.LinkGetProtinfo(tap); err != nil || !pi.Isolated {
			t.Errorf("tap %s is not an isolated bridge port: %+v %v", g.Tap, pi, err)
		}
	}
	if tap, ok := l.Tap("guest"); !ok || tap != "thvm1" {
		t.Errorf("Tap(guest) = %q %v", tap, ok)
	}
	// A veth pair stands in for the guest's NIC: one end on the bridge,
	// the other with the guest's MAC.
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "vguest"
	attrs.MasterIndex = br.Attrs().Index
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "vnic", PeerHardwareAddr: l.Guests[1].MAC}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vguest", "vnic"} {
		link, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client, err := nclient4.New("vnic", nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := client.Request(ctx)
	if err != nil {
		t.Fatalf("DHCP on the link: %v", err)
	}
	if !lease.ACK.YourIPAddr.Equal(layout.GuestLinkAddr(1)) || len(lease.ACK.Router()) != 0 {
		t.Errorf("lease: %s", lease.ACK.Summary())
	}
}
