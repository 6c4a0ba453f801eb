package hostd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// dhclientPath is u-root's DHCP client in the image.
const dhclientPath = "/bbin/dhclient"

// wiredRenew is how often a wired link with an address asks DHCP again.
const wiredRenew = 30 * time.Minute

// startNetwork looks after the wired interfaces in the background — the
// host is ready without a network: each is brought up, asks DHCP when a
// cable is in (at boot or plugged in later), again every 30 minutes, and
// loses its addresses when the cable is pulled out; the console says what
// each got.
func startNetwork(ctx context.Context, log *slog.Logger, console io.Writer) {
	go watchWired(ctx, log, console, 2*time.Second)
}

func watchWired(ctx context.Context, log *slog.Logger, console io.Writer, every time.Duration) {
	w := &WiredLinks{Renew: wiredRenew}
	var mu sync.Mutex // guards w against the DHCP goroutines' results
	brought := map[string]bool{}
	first := time.Now()
	saidNone := false
	for {
		carrier := map[string]bool{}
		entries, _ := os.ReadDir("/sys/class/net")
		for _, e := range entries {
			name := e.Name()
			if !IsWired(name) {
				continue
			}
			if !brought[name] {
				// Up, so the driver reports the carrier.
				if l, err := netlink.LinkByName(name); err == nil {
					if err := netlink.LinkSetUp(l); err != nil {
						log.Warn("bring the wired interface up", "interface", name, "err", err)
					}
				}
				brought[name] = true
			}
			b, _ := os.ReadFile(filepath.Join("/sys/class/net", name, "carrier"))
			carrier[name] = strings.TrimSpace(string(b)) == "1"
		}
		mu.Lock()
		actions := w.Observe(time.Now(), carrier)
		mu.Unlock()
		for _, a := range actions {
			switch {
			case a.Down:
				flushAddresses(log, a.Iface)
				fmt.Fprintf(console, "thinhost: network %s: cable unplugged\n", a.Iface)
			case a.DHCP:
				go func(a WiredAction) {
					before := interfaceAddresses(a.Iface)
					err := dhcpOn(ctx, a.Iface)
					mu.Lock()
					w.Result(a.Iface, err == nil, time.Now())
					up := w.Up(a.Iface)
					mu.Unlock()
					if !up {
						// The cable went while dhclient asked: what it
						// set belongs to the network that is gone.
						flushAddresses(log, a.Iface)
						return
					}
					after := interfaceAddresses(a.Iface)
					switch {
					case err != nil && !a.Renew:
						log.Info("dhcp", "interface", a.Iface, "err", err)
					case err != nil:
						log.Warn("dhcp renewal", "interface", a.Iface, "err", err)
					case !a.Renew || strings.Join(before, ",") != strings.Join(after, ","):
						fmt.Fprintf(console, "thinhost: network %s %s\n", a.Iface, strings.Join(after, ", "))
					default:
						log.Debug("dhcp renewed", "interface", a.Iface, "addresses", after)
					}
				}(a)
			}
		}
		if !saidNone && time.Since(first) > 40*time.Second {
			saidNone = true
			if len(carrier) > 0 && len(wiredAddresses()) == 0 {
				fmt.Fprintln(console, "thinhost: network: no wired interface got an address by DHCP (a cable plugged in later still gets one)")
			}
		}
		// Quicker while the links come up at boot.
		wait := every
		if time.Since(first) < 10*time.Second {
			wait = every / 4
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// flushAddresses removes iface's IPv4 addresses (and so its routes).
func flushAddresses(log *slog.Logger, iface string) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		log.Warn("list the addresses of a link that went down", "interface", iface, "err", err)
		return
	}
	for _, a := range addrs {
		if err := netlink.AddrDel(l, &a); err != nil {
			log.Warn("drop an address of a link that went down", "interface", iface, "address", a.IPNet, "err", err)
		}
	}
}

// wiredAddresses lists "name addr/prefix" for the IPv4 addresses of the
// wired interfaces.
func wiredAddresses() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, ifc := range ifs {
		if !IsWired(ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				out = append(out, ifc.Name+" "+n.String())
			}
		}
	}
	return out
}
