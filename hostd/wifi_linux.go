package hostd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/hostd/wifi"
	"github.com/thinhost/thinhost/images/layout/config"
)

// wifiDir holds wpa_supplicant's configuration and control sockets (in
// RAM, root's alone); wifiStoreFile the passphrases, on the data
// partition.
var (
	wifiDir       = "/run/thinhost/wifi"
	wifiStoreFile = filepath.Join(storage.DataDir, "state", "wifi.json")
)

// wifiService is the supervised wpa_supplicant's name.
const wifiService = "wpa_supplicant"

// takeFirstBoot keeps the first-boot secrets (storage.SetupData's FirstBoot) for
// the services that need them.
func (d *Daemon) takeFirstBoot(payload []byte) {
	var fb config.FirstBoot
	if err := json.Unmarshal(payload, &fb); err != nil {
		d.opts.Log.Warn("the first-boot secrets are not readable; Wi-Fi passphrases must be given again with thinhost ctl wifi connect", "err", err)
		return
	}
	d.firstBoot = &fb
}

// startWifi joins the profile's wireless networks: once a wireless
// interface appears (its driver and firmware load from the system image),
// hostd writes wpa_supplicant's configuration, runs it under the
// supervisor and follows it.
func (d *Daemon) startWifi(ctx context.Context) {
	cfg := d.opts.Config.Wifi
	if cfg == nil {
		return
	}
	log := d.opts.Log
	store := &wifi.Store{}
	if d.data != nil && d.data.Mounted {
		var err error
		if store, err = wifi.LoadStore(wifiStoreFile); err != nil {
			log.Warn("wifi passphrases", "err", err)
		}
	} else {
		log.Warn("the data partition is not mounted: Wi-Fi passphrases are kept for this boot only")
	}
	if d.firstBoot != nil {
		store.Merge(d.firstBoot.WifiPassphrases)
		if err := store.Save(); err != nil {
			log.Warn("keep the first boot's wifi passphrases", "err", err)
		} else if store.Path != "" {
			log.Info("kept the first boot's wifi passphrases on the data partition", "networks", len(d.firstBoot.WifiPassphrases))
		}
		d.firstBoot = nil
	}
	// Checked after the passphrases are kept: the partition no longer
	// holds them.
	if err := cfg.Check(); err != nil {
		d.record("wifi: %v", err)
		return
	}
	d.wifiWait.Store(&api.Wifi{Networks: []api.WifiNetwork{}, Problem: "waiting for a wireless interface (its driver and firmware load from the system image)"})
	go func() {
		iface, err := waitWireless(ctx, cfg.Interface, func(waited time.Duration) {
			log.Warn("no wireless interface yet", "interface", cfg.Interface, "waited", waited)
		})
		if err != nil {
			return
		}
		// The profile asks for Wi-Fi: a radio software left off goes on.
		switchWifiOn(log, "the profile's wifi block")
		m := wifi.NewManager(log, cfg, iface, wifiDir, store)
		m.Radio = func() string { return RadioProblem(wifiRadios(log)) }
		m.DHCP = dhcpOn
		m.Addresses = interfaceAddresses
		m.Console = func(line string) { fmt.Fprintln(d.opts.Console, line) }
		err = os.MkdirAll(m.CtrlDir(), 0o700)
		if err == nil {
			err = m.WriteConf()
		}
		if err != nil {
			d.record("wifi: %v", err)
			return
		}
		path, args := sysimage.Program("/sbin/wpa_supplicant", m.Args()...)
		if err := d.sup.Start(context.WithoutCancel(ctx), supervise.Service{Name: wifiService, Path: path, Args: args, Env: sysimage.Env()}); err != nil {
			d.record("start wpa_supplicant: %v", err)
			return
		}
		d.wifi.Store(m)
		log.Info("wifi", "interface", iface, "networks", len(cfg.Networks))
		m.Run(ctx)
	}()
}

// waitWireless returns the wireless interface named want ("": the first,
// by name), waiting for it to appear; slow is called each minute it
// waits.
func waitWireless(ctx context.Context, want string, slow func(time.Duration)) (string, error) {
	start := time.Now()
	next := time.Minute
	for {
		if names := wirelessInterfaces(); len(names) > 0 {
			if want == "" {
				return names[0], nil
			}
			for _, n := range names {
				if n == want {
					return n, nil
				}
			}
		}
		if waited := time.Since(start); waited >= next {
			slow(waited.Round(time.Second))
			next += time.Minute
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// wirelessInterfaces are the interfaces with a cfg80211 radio, sorted.
func wirelessInterfaces() []string {
	dirs, _ := filepath.Glob("/sys/class/net/*/phy80211")
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Base(filepath.Dir(d)))
	}
	sort.Strings(out)
	return out
}

// dhcpOn asks for an IPv4 address on iface with u-root's DHCP client.
func dhcpOn(ctx context.Context, iface string) error {
	out, err := exec.CommandContext(ctx, dhclientPath, "-ipv6=false", "-timeout", "10", "-retry", "3", "^"+iface+"$").CombinedOutput()
	if err != nil {
		return fmt.Errorf("dhclient %s: %w: %s", iface, err, strings.TrimSpace(string(out)))
	}
	if len(interfaceAddresses(iface)) == 0 {
		return fmt.Errorf("dhclient %s: no address: %s", iface, strings.TrimSpace(string(out)))
	}
	return nil
}

// interfaceAddresses are iface's IPv4 addresses, "addr/prefix".
func interfaceAddresses(iface string) []string {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil
	}
	addrs, _ := ifc.Addrs()
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out = append(out, n.String())
		}
	}
	return out
}

// Wifi implements api.WifiBackend.
func (d *Daemon) Wifi() *api.Wifi {
	if d.opts.Config.Wifi == nil {
		return nil
	}
	if m := d.wifi.Load(); m != nil {
		return m.Status()
	}
	if w := d.wifiWait.Load(); w != nil {
		return w
	}
	return &api.Wifi{Networks: []api.WifiNetwork{}, Problem: "not started: see the problems in thinhost ctl status"}
}

var errNoWifiYet = errors.New("no wireless interface yet: its driver and firmware may still be loading (thinhost ctl wifi shows why)")

// Scan implements api.WifiBackend.
func (d *Daemon) Scan(ctx context.Context) ([]api.WifiBSS, error) {
	m := d.wifi.Load()
	if m == nil {
		return nil, errNoWifiYet
	}
	return m.Scan(ctx)
}

// Connect implements api.WifiBackend.
func (d *Daemon) Connect(ctx context.Context, req api.WifiConnect) (string, error) {
	m := d.wifi.Load()
	if m == nil {
		return "", errNoWifiYet
	}
	// Asked to join a network: out of airplane mode first.
	switchWifiOn(d.opts.Log, "ctl wifi connect")
	return m.Connect(ctx, req)
}

// Forget implements api.WifiBackend.
func (d *Daemon) Forget(ctx context.Context, network string) (string, error) {
	m := d.wifi.Load()
	if m == nil {
		return "", errNoWifiYet
	}
	return m.Forget(ctx, network)
}
