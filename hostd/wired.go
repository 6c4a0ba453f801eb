package hostd

import (
	"sort"
	"strings"
	"time"
)

// IsWired reports whether an interface is wired Ethernet by its kernel
// name: "eth0", "enp2s0", and "usb0" (a USB Ethernet adapter or a phone's
// tethering, cdc_ether and rndis).
func IsWired(name string) bool {
	return strings.HasPrefix(name, "e") || strings.HasPrefix(name, "usb")
}

// WiredAction is what to do for one wired interface.
type WiredAction struct {
	Iface string
	// DHCP asks for an address (a cable plugged in, a renewal, a retry);
	// Renew says it is a renewal of a link that has one.
	DHCP, Renew bool
	// Down: the cable was pulled out: its addresses go (another network
	// may be at the end of the next cable).
	Down bool
}

// WiredLinks decides, from the wired interfaces' carrier, when to ask
// DHCP: when a cable is plugged in (at boot or later), again every Renew
// while it stays (u-root's dhclient sets the address without a lifetime
// and never renews), and after a failure with a growing wait; and when to
// drop the addresses (the cable pulled out).
type WiredLinks struct {
	// Renew is how often a link that has an address asks again.
	Renew time.Duration

	links map[string]*wiredLink
}

type wiredLink struct {
	up      bool
	asking  bool
	next    time.Time // the next DHCP request, while up
	fails   int
	hasAddr bool
}

// wiredRetry is the wait after n failed requests in a row.
func wiredRetry(n int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d
}

// Observe takes each wired interface's carrier now and returns what to
// do, in name order. An interface gone from the map is forgotten.
func (w *WiredLinks) Observe(now time.Time, carrier map[string]bool) []WiredAction {
	if w.links == nil {
		w.links = map[string]*wiredLink{}
	}
	for name := range w.links {
		if _, ok := carrier[name]; !ok {
			delete(w.links, name)
		}
	}
	names := make([]string, 0, len(carrier))
	for n := range carrier {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []WiredAction
	for _, name := range names {
		up := carrier[name]
		l := w.links[name]
		if l == nil {
			l = &wiredLink{}
			w.links[name] = l
		}
		switch {
		case up && !l.up:
			l.up, l.fails, l.hasAddr = true, 0, false
			l.next = now
		case !up && l.up:
			*l = wiredLink{}
			out = append(out, WiredAction{Iface: name, Down: true})
			continue
		}
		if l.up && !l.asking && !now.Before(l.next) {
			l.asking = true
			out = append(out, WiredAction{Iface: name, DHCP: true, Renew: l.hasAddr})
		}
	}
	return out
}

// Result records how the DHCP request for iface went.
func (w *WiredLinks) Result(iface string, ok bool, now time.Time) {
	l := w.links[iface]
	if l == nil {
		return
	}
	l.asking = false
	if !l.up {
		return
	}
	if ok {
		l.fails, l.hasAddr = 0, true
		l.next = now.Add(w.Renew)
		return
	}
	l.fails++
	l.next = now.Add(wiredRetry(l.fails))
}

// Up reports whether iface's cable is in, as last observed.
func (w *WiredLinks) Up(iface string) bool {
	l := w.links[iface]
	return l != nil && l.up
}
