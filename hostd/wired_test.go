package hostd

import (
	"fmt"
	"testing"
	"time"
)

func actions(as []WiredAction) string {
	s := ""
	for _, a := range as {
		switch {
		case a.Down:
			s += a.Iface + ":down "
		case a.Renew:
			s += a.Iface + ":renew "
		case a.DHCP:
			s += a.Iface + ":dhcp "
		}
	}
	return s
}

// TestWiredLinks: a cable at boot and one plugged in later both ask
// DHCP at once; a link with an address asks again every Renew; a failure
// is retried after 10 s, 20 s, 40 s ... at most 5 minutes; a cable pulled
// out drops the addresses, and plugged in again asks at once; one request
// at a time per interface.
func TestWiredLinks(t *testing.T) {
	w := &WiredLinks{Renew: 30 * time.Minute}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := func(d time.Duration, carrier map[string]bool, want string) {
		t.Helper()
		if got := actions(w.Observe(at(d), carrier)); got != want {
			t.Errorf("at %s %v: %q, want %q", d, carrier, got, want)
		}
	}
	step(0, map[string]bool{"eth0": true, "eth1": false}, "eth0:dhcp ")
	step(2*time.Second, map[string]bool{"eth0": true, "eth1": false}, "") // still asking
	w.Result("eth0", true, at(5*time.Second))
	step(10*time.Second, map[string]bool{"eth0": true, "eth1": true}, "eth1:dhcp ")
	w.Result("eth1", false, at(20*time.Second))
	step(25*time.Second, map[string]bool{"eth0": true, "eth1": true}, "")
	step(30*time.Second, map[string]bool{"eth0": true, "eth1": true}, "eth1:dhcp ")
	w.Result("eth1", false, at(30*time.Second))
	step(45*time.Second, map[string]bool{"eth0": true, "eth1": true}, "")
	step(50*time.Second, map[string]bool{"eth0": true, "eth1": true}, "eth1:dhcp ")
	w.Result("eth1", true, at(50*time.Second))
	step(30*time.Minute+5*time.Second, map[string]bool{"eth0": true, "eth1": true}, "eth0:renew ")
	w.Result("eth0", true, at(30*time.Minute+6*time.Second))
	step(31*time.Minute, map[string]bool{"eth0": false, "eth1": true}, "eth0:down eth1:renew ")
	w.Result("eth1", true, at(31*time.Minute))
	step(31*time.Minute+2*time.Second, map[string]bool{"eth0": false, "eth1": true}, "")
	step(32*time.Minute, map[string]bool{"eth0": true, "eth1": true}, "eth0:dhcp ")
	// Pulled out while asking: the answer is dropped (and what dhclient
	// set goes: Up says the cable is out).
	step(32*time.Minute+time.Second, map[string]bool{"eth0": false, "eth1": true}, "eth0:down ")
	w.Result("eth0", true, at(32*time.Minute+2*time.Second))
	if w.Up("eth0") || !w.Up("eth1") {
		t.Error("Up does not follow the cables")
	}
	step(33*time.Minute, map[string]bool{"eth0": true, "eth1": true}, "eth0:dhcp ")
	// An interface that went away is forgotten.
	step(34*time.Minute, map[string]bool{"eth1": true}, "")
	if _, ok := w.links["eth0"]; ok {
		t.Error("eth0 is still known")
	}
}

func TestWiredRetry(t *testing.T) {
	got := ""
	for n := 1; n <= 8; n++ {
		got += fmt.Sprint(wiredRetry(n)) + " "
	}
	if got != "10s 20s 40s 1m20s 2m40s 5m0s 5m0s 5m0s " {
		t.Errorf("retries: %s", got)
	}
}

func TestIsWired(t *testing.T) {
	for name, want := range map[string]bool{"eth0": true, "enp2s0": true, "enx00e04c680001": true, "usb0": true, "wlan0": false, "lo": false, "thbr0": false, "tap0": false} {
		if IsWired(name) != want {
			t.Errorf("IsWired(%q) = %v", name, !want)
		}
	}
}
