package wifi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/layout/config"
)

// MaxWrongKey is how many times a network's passphrase may be refused
// before the host stops trying it. The first refusal may be a hiccup;
// after the second the network is given up on: the supplicant would
// otherwise leave a working network for it again and again (it has the
// higher priority), and a person should hear that it is wrong.
const MaxWrongKey = 2

// DHCPRenew is how often the address is asked for again while joined:
// the DHCP client configures it once, and most networks lease for hours.
const DHCPRenew = 30 * time.Minute

// SelectWait is how long the other networks stay off for one that ctl
// wifi connect chose and that does not join.
const SelectWait = time.Minute

// reqTimeout bounds one control request.
const reqTimeout = 5 * time.Second

// Manager drives one interface's wpa_supplicant: it writes its
// configuration, follows its events, runs DHCP when joined, and answers
// the API.
type Manager struct {
	Log     *slog.Logger
	Iface   string
	Country string
	// Dir holds the configuration, the supplicant's control sockets and
	// hostd's own client sockets (root's alone).
	Dir string
	// DHCP asks for an address on iface; Addresses lists its IPv4 ones.
	DHCP      func(ctx context.Context, iface string) error
	Addresses func(iface string) []string
	// Console prints a line on the host's consoles.
	Console func(line string)
	// Radio, when set, says why the radio cannot send (switched off by
	// a switch, or airplane mode); empty when it can.
	Radio func() string
	// Store keeps the passphrases (nil: this boot only).
	Store *Store

	mu       sync.Mutex
	networks []Network
	// ids maps the supplicant's network ids to networks' indexes.
	ids      map[int]int
	ctrl     *Conn
	wrong    map[int]int
	problems map[int]string
	// reenable is set while the network ctl wifi connect selected has not
	// joined: the others are off until then, or until selectTimer fires.
	reenable    bool
	selectTimer *time.Timer
	joined      int
	dhcpStop    context.CancelFunc
	scans       []chan struct{}
}

// NewManager returns a manager for the profile's networks, with the
// passphrases store knows (store may be nil).
func NewManager(log *slog.Logger, cfg *config.Wifi, iface, dir string, store *Store) *Manager {
	m := &Manager{Log: log, Iface: iface, Country: cfg.Country, Dir: dir, Store: store,
		ids: map[int]int{}, wrong: map[int]int{}, problems: map[int]string{}, joined: -1}
	if store == nil {
		m.Store = &Store{}
	}
	for _, n := range cfg.Networks {
		m.networks = append(m.networks, Network{WifiNetwork: n, Passphrase: m.Store.Passphrases[n.Name]})
	}
	for _, a := range m.Store.Added {
		m.networks = append(m.networks, Network{WifiNetwork: config.WifiNetwork{Name: a.SSID, SSID: a.SSID, Security: a.Security}, Passphrase: a.Passphrase, Added: true})
	}
	for i, n := range m.networks {
		if !n.Usable() {
			m.problems[i] = "its passphrase is not known (the data partition held none for it): thinhost ctl wifi connect " + label(n) + " --passphrase-stdin"
		}
	}
	return m
}

// ConfPath is the supplicant's configuration file.
func (m *Manager) ConfPath() string { return filepath.Join(m.Dir, "wpa_supplicant.conf") }

// CtrlDir is where the supplicant makes its control socket.
func (m *Manager) CtrlDir() string { return filepath.Join(m.Dir, "ctrl") }

// WriteConf writes the supplicant's configuration (0600).
func (m *Manager) WriteConf() error {
	m.mu.Lock()
	conf, _, err := Render(m.Country, m.CtrlDir(), m.networks)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return err
	}
	tmp := m.ConfPath() + ".new"
	if err := os.WriteFile(tmp, conf, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, m.ConfPath())
}

// Args are wpa_supplicant's arguments.
func (m *Manager) Args() []string {
	return []string{"-i", m.Iface, "-c", m.ConfPath(), "-D", "nl80211"}
}

func (m *Manager) console(format string, a ...any) {
	line := "thinhost: wifi: " + fmt.Sprintf(format, a...)
	if m.Console == nil {
		m.Log.Info(line)
		return
	}
	// The console's line; the log keeps it too, below the console's level.
	m.Log.Debug(line)
	m.Console(line)
}

// Run follows the supplicant's events until ctx ends, reconnecting when
// the supervisor restarts it.
func (m *Manager) Run(ctx context.Context) {
	sock := filepath.Join(m.CtrlDir(), m.Iface)
	for ctx.Err() == nil {
		if err := m.follow(ctx, sock); err != nil && ctx.Err() == nil {
			m.Log.Debug("wpa_supplicant's control socket", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	m.mu.Lock()
	if m.dhcpStop != nil {
		m.dhcpStop()
	}
	if m.ctrl != nil {
		m.ctrl.Close()
		m.ctrl = nil
	}
	m.mu.Unlock()
}

func (m *Manager) follow(ctx context.Context, sock string) error {
	ctrl, err := Dial(sock, m.Dir)
	if err != nil {
		return err
	}
	mon, err := Dial(sock, m.Dir)
	if err != nil {
		ctrl.Close()
		return err
	}
	defer mon.Close()
	// Its reads end with ctx.
	stop := context.AfterFunc(ctx, func() { mon.c.SetReadDeadline(time.Now()) })
	defer stop()
	if err := mon.Attach(reqTimeout); err != nil {
		ctrl.Close()
		return err
	}
	if err := m.mapIDs(ctrl); err != nil {
		ctrl.Close()
		return err
	}
	m.mu.Lock()
	if m.ctrl != nil {
		m.ctrl.Close()
	}
	m.ctrl = ctrl
	m.mu.Unlock()
	m.Log.Info("wpa_supplicant answers", "interface", m.Iface)
	// Joined before hostd listened (a restart of hostd's watcher).
	if st, err := ctrl.Request("STATUS", reqTimeout); err == nil {
		kv := ParseKV(st)
		if kv["wpa_state"] == "COMPLETED" {
			id, _ := strconv.Atoi(kv["id"])
			m.connected(ctx, id)
		}
	}
	for ctx.Err() == nil {
		ev, err := mon.Event(10 * time.Second)
		if errors.Is(err, ErrTimeout) {
			// A silent supplicant may be a dead one (asked on the other
			// socket: a reply read here would drop events).
			if _, err := ctrl.Request("PING", reqTimeout); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if ev.Name == "CTRL-EVENT-TERMINATING" {
			return errors.New("wpa_supplicant terminated")
		}
		m.handle(ctx, ev)
	}
	return nil
}

// mapIDs learns the supplicant's network ids (LIST_NETWORKS, in its
// configuration's order) for the networks it was given.
func (m *Manager) mapIDs(c *Conn) error {
	list, err := c.Request("LIST_NETWORKS", reqTimeout)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids = map[int]int{}
	taken := map[int]bool{}
	for i, line := range strings.Split(strings.TrimRight(list, "\n"), "\n") {
		if i == 0 {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			continue
		}
		// The first network with this SSID not yet taken: the supplicant
		// lists them in the order hostd gave them, in the file and then
		// with ADD_NETWORK, so networks sharing an SSID keep their order.
		ssid := Unescape(f[1])
		for j := range m.networks {
			if !taken[j] && m.networks[j].Usable() && m.networks[j].SSID == ssid {
				m.ids[id] = j
				taken[j] = true
				break
			}
		}
	}
	return nil
}

var idRE = regexp.MustCompile(`\[id=(\d+)`)

func (m *Manager) handle(ctx context.Context, ev Event) {
	switch ev.Name {
	case "CTRL-EVENT-CONNECTED":
		id := -1
		if s := idRE.FindStringSubmatch(ev.Text); s != nil {
			id, _ = strconv.Atoi(s[1])
		}
		m.connected(ctx, id)
	case "CTRL-EVENT-DISCONNECTED":
		m.mu.Lock()
		if m.dhcpStop != nil {
			m.dhcpStop()
			m.dhcpStop = nil
		}
		was := m.joined
		m.joined = -1
		m.mu.Unlock()
		if was >= 0 {
			m.Log.Info("wifi disconnected", "interface", m.Iface, "reason", ev.Fields["reason"])
		}
	case "CTRL-EVENT-SSID-TEMP-DISABLED":
		id, err := strconv.Atoi(ev.Fields["id"])
		if err != nil {
			return
		}
		if ev.Fields["reason"] != "WRONG_KEY" {
			m.Log.Warn("wifi network failed", "ssid", ev.Fields["ssid"], "reason", ev.Fields["reason"], "failures", ev.Fields["auth_failures"])
			return
		}
		m.wrongKey(id)
	case "CTRL-EVENT-SCAN-RESULTS":
		m.mu.Lock()
		for _, c := range m.scans {
			close(c)
		}
		m.scans = nil
		m.mu.Unlock()
	}
}

// wrongKey counts a refused passphrase, says so, and gives up on the
// network after MaxWrongKey, for WrongKeyRetry: a refusal may also be a
// weak signal, or someone in radio range spoiling the handshake, which
// must not keep the host off its network for good.
func (m *Manager) wrongKey(id int) {
	m.mu.Lock()
	idx, ok := m.ids[id]
	if !ok {
		m.mu.Unlock()
		return
	}
	m.wrong[idx]++
	n, count := m.networks[idx], m.wrong[idx]
	disable := count >= MaxWrongKey
	m.problems[idx] = "the access point refused its passphrase"
	if count > 1 {
		m.problems[idx] += fmt.Sprintf(" (%d times)", count)
	}
	if disable {
		m.problems[idx] += fmt.Sprintf("; tried again in %s, or at once with `thinhost ctl wifi connect %s --passphrase-stdin` and the right one", WrongKeyRetry, label(n))
	}
	ctrl := m.ctrl
	// The network `ctl wifi connect` chose is refused: the others come
	// back rather than wait for a join that will not come.
	others := disable && m.reenable
	m.mu.Unlock()
	switch {
	case disable:
		if ctrl != nil {
			if err := ctrl.OK("DISABLE_NETWORK "+strconv.Itoa(id), reqTimeout); err != nil {
				m.Log.Warn("disable wifi network", "network", n.Name, "err", err)
			}
		}
		if others {
			m.reenableOthers()
		}
		m.console("network %s (%q): the passphrase is wrong: refused %d times; tried again in %s", label(n), n.SSID, count, WrongKeyRetry)
		time.AfterFunc(WrongKeyRetry, func() { m.retry(idx) })
	case count == 1:
		m.console("network %s (%q): the access point refused the passphrase; trying again", label(n), n.SSID)
	}
}

// WrongKeyRetry is how long a network given up on for its passphrase
// waits before it is tried again.
var WrongKeyRetry = 10 * time.Minute

// retry enables the network at idx again after WrongKeyRetry, unless it
// joined or was given a passphrase meanwhile.
func (m *Manager) retry(idx int) {
	m.mu.Lock()
	if m.wrong[idx] < MaxWrongKey {
		m.mu.Unlock()
		return
	}
	m.wrong[idx] = 0
	ctrl, id := m.ctrl, m.idOf(idx)
	m.mu.Unlock()
	if ctrl != nil && id >= 0 {
		if err := ctrl.OK("ENABLE_NETWORK "+strconv.Itoa(id), reqTimeout); err != nil {
			m.Log.Warn("enable wifi network", "id", id, "err", err)
		}
	}
}

// reenableOthers turns back on what SELECT_NETWORK (ctl wifi connect)
// turned off: every network but those given up on for their passphrase,
// so the host roams to them later.
func (m *Manager) reenableOthers() {
	m.mu.Lock()
	if !m.reenable {
		m.mu.Unlock()
		return
	}
	m.reenable = false
	if m.selectTimer != nil {
		m.selectTimer.Stop()
	}
	ctrl := m.ctrl
	var enable []int
	for sid, i := range m.ids {
		if m.wrong[i] < MaxWrongKey {
			enable = append(enable, sid)
		}
	}
	m.mu.Unlock()
	slices.Sort(enable)
	for _, sid := range enable {
		if ctrl != nil {
			if err := ctrl.OK("ENABLE_NETWORK "+strconv.Itoa(sid), reqTimeout); err != nil {
				m.Log.Warn("enable wifi network", "id", sid, "err", err)
			}
		}
	}
}

// label names n in messages: its profile name, or its SSID, quoted, for
// a network ctl wifi connect added.
func label(n Network) string {
	if n.Added {
		return strconv.Quote(n.SSID)
	}
	return n.Name
}

// connected starts DHCP on the link for the network with supplicant id.
func (m *Manager) connected(ctx context.Context, id int) {
	m.mu.Lock()
	idx, ok := m.ids[id]
	if !ok {
		idx = -1
	} else {
		delete(m.wrong, idx)
		delete(m.problems, idx)
	}
	if m.dhcpStop != nil {
		m.dhcpStop()
	}
	dctx, stop := context.WithCancel(ctx)
	m.dhcpStop = stop
	m.joined = idx
	ssid := ""
	if idx >= 0 {
		ssid = m.networks[idx].SSID
	}
	m.mu.Unlock()
	m.reenableOthers()
	m.console("joined %q on %s", ssid, m.Iface)
	go m.dhcpLoop(dctx, ssid)
}

func (m *Manager) dhcpLoop(ctx context.Context, ssid string) {
	for ctx.Err() == nil {
		wait := DHCPRenew
		if m.DHCP != nil {
			if err := m.DHCP(ctx, m.Iface); err != nil {
				if ctx.Err() != nil {
					return
				}
				m.Log.Warn("wifi dhcp", "interface", m.Iface, "ssid", ssid, "err", err)
				wait = 20 * time.Second
			} else {
				var addrs []string
				if m.Addresses != nil {
					addrs = m.Addresses(m.Iface)
				}
				m.console("%s %s from DHCP on %q", m.Iface, strings.Join(addrs, ", "), ssid)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// Status is the link as the API shows it.
func (m *Manager) Status() *api.Wifi {
	st := &api.Wifi{Interface: m.Iface, Networks: []api.WifiNetwork{}}
	m.mu.Lock()
	for i, n := range m.networks {
		if n.Gone {
			continue
		}
		st.Networks = append(st.Networks, api.WifiNetwork{Name: n.Name, SSID: n.SSID, Security: n.Security, Priority: n.Priority,
			Hidden: n.Hidden, Added: n.Added, Problem: m.problems[i]})
	}
	ctrl := m.ctrl
	m.mu.Unlock()
	if m.Radio != nil {
		st.Problem = m.Radio()
	}
	if ctrl == nil {
		if st.Problem == "" {
			st.Problem = "wpa_supplicant does not answer yet"
		}
		return st
	}
	reply, err := ctrl.Request("STATUS", reqTimeout)
	if err != nil {
		if st.Problem == "" {
			st.Problem = err.Error()
		}
		return st
	}
	kv := ParseKV(reply)
	st.State = kv["wpa_state"]
	if st.State == "COMPLETED" {
		st.Connected = true
		st.SSID, st.BSSID = Unescape(kv["ssid"]), kv["bssid"]
		if id, err := strconv.Atoi(kv["id"]); err == nil {
			m.mu.Lock()
			if idx, ok := m.ids[id]; ok {
				st.Network = m.networks[idx].Name
			}
			m.mu.Unlock()
		}
		st.Frequency, _ = strconv.Atoi(kv["freq"])
		if sig, err := ctrl.Request("SIGNAL_POLL", reqTimeout); err == nil {
			st.Signal, _ = strconv.Atoi(ParseKV(sig)["RSSI"])
		}
	}
	if m.Addresses != nil {
		st.Addresses = m.Addresses(m.Iface)
	}
	return st
}

// Scan asks for a fresh scan and returns what it found, strongest first.
func (m *Manager) Scan(ctx context.Context) ([]api.WifiBSS, error) {
	m.mu.Lock()
	ctrl := m.ctrl
	done := make(chan struct{})
	m.scans = append(m.scans, done)
	m.mu.Unlock()
	if ctrl == nil {
		return nil, errors.New("wpa_supplicant does not answer yet")
	}
	if _, err := ctrl.Request("SCAN", reqTimeout); err != nil && !strings.Contains(err.Error(), "FAIL-BUSY") {
		return nil, fmt.Errorf("scan: %w", err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		// The results of the last scan, then.
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	reply, err := ctrl.Request("SCAN_RESULTS", reqTimeout)
	if err != nil {
		return nil, fmt.Errorf("scan results: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []api.WifiBSS
	for _, b := range ParseScanResults(reply) {
		w := api.WifiBSS{SSID: b.SSID, BSSID: b.BSSID, Frequency: b.Frequency, Signal: b.Signal, Security: b.Security()}
		for _, n := range m.networks {
			if n.SSID == b.SSID {
				w.Known = n.Name
				break
			}
		}
		out = append(out, w)
	}
	slices.SortStableFunc(out, func(a, b api.WifiBSS) int { return b.Signal - a.Signal })
	return out, nil
}

// Connect joins a network: a known one by name or SSID (with a new
// passphrase when given), or a new one with its passphrase, which is
// kept.
func (m *Manager) Connect(ctx context.Context, req api.WifiConnect) (string, error) {
	if req.Passphrase != "" {
		if err := config.CheckPassphrase(req.Passphrase); err != nil {
			return "", fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
	}
	m.mu.Lock()
	ctrl := m.ctrl
	idx := m.find(req.Network)
	m.mu.Unlock()
	if ctrl == nil {
		return "", errors.New("wpa_supplicant does not answer yet")
	}
	if idx < 0 {
		if err := config.CheckSSID(req.Network); err != nil {
			return "", fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		// What the last scan saw it offer; either, when it was not seen.
		sec, seen := config.WifiWPA2WPA3, false
		if reply, err := ctrl.Request("SCAN_RESULTS", reqTimeout); err == nil {
			for _, b := range ParseScanResults(reply) {
				if s := b.Security(); b.SSID == req.Network && config.CheckWifiSecurity(s) == nil {
					sec, seen = s, true
					break
				}
			}
		}
		switch {
		case sec == config.WifiOpen && req.Passphrase != "":
			return "", fmt.Errorf("%w: %q is an open network: it takes no passphrase", api.ErrBadRequest, req.Network)
		case sec != config.WifiOpen && req.Passphrase == "":
			why := "give its passphrase (--passphrase-stdin) to add it"
			if !seen {
				why = "no scan saw it (thinhost ctl wifi scan): give its passphrase (--passphrase-stdin) to add it"
			}
			return "", fmt.Errorf("%w: %q is not one of the host's networks: %s", api.ErrNoNetwork, req.Network, why)
		}
		m.mu.Lock()
		m.networks = append(m.networks, Network{WifiNetwork: config.WifiNetwork{Name: req.Network, SSID: req.Network, Security: sec}, Added: true})
		idx = len(m.networks) - 1
		m.mu.Unlock()
	}
	m.mu.Lock()
	n := m.networks[idx]
	if req.Passphrase != "" {
		n.Passphrase = req.Passphrase
		m.networks[idx] = n
	}
	if n.Security == config.WifiOpen && req.Passphrase != "" {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: %s is an open network: it takes no passphrase", api.ErrBadRequest, label(n))
	}
	if !n.Usable() {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: the passphrase of %s is not known: give it (--passphrase-stdin)", api.ErrBadRequest, label(n))
	}
	id := m.idOf(idx)
	delete(m.wrong, idx)
	delete(m.problems, idx)
	m.mu.Unlock()

	if req.Passphrase != "" || (n.Added && newOpen(n, id)) {
		if err := m.remember(n); err != nil {
			m.Log.Warn("keep the wifi passphrase", "network", n.Name, "err", err)
		}
	}
	newID := id < 0
	if newID {
		reply, err := ctrl.Request("ADD_NETWORK", reqTimeout)
		if err != nil {
			return "", err
		}
		if id, err = strconv.Atoi(strings.TrimSpace(reply)); err != nil {
			return "", fmt.Errorf("wpa_supplicant ADD_NETWORK: %q", reply)
		}
		m.mu.Lock()
		m.ids[id] = idx
		m.mu.Unlock()
	}
	if req.Passphrase != "" || newID {
		for _, f := range fields(n) {
			k, v, _ := strings.Cut(f, "=")
			if err := ctrl.OK(fmt.Sprintf("SET_NETWORK %d %s %s", id, k, v), reqTimeout); err != nil {
				return "", err
			}
		}
	}
	if err := ctrl.OK(fmt.Sprintf("ENABLE_NETWORK %d", id), reqTimeout); err != nil {
		return "", err
	}
	// SELECT_NETWORK turns every other network off until this one joins;
	// if it never does, they come back after SelectWait.
	m.mu.Lock()
	m.reenable = true
	if m.selectTimer != nil {
		m.selectTimer.Stop()
	}
	m.selectTimer = time.AfterFunc(SelectWait, m.reenableOthers)
	m.mu.Unlock()
	if err := ctrl.OK(fmt.Sprintf("SELECT_NETWORK %d", id), reqTimeout); err != nil {
		m.reenableOthers()
		return "", err
	}
	// Written again, so a restarted supplicant knows it too.
	if err := m.WriteConf(); err != nil {
		m.Log.Warn("write the wifi configuration", "err", err)
	}
	return fmt.Sprintf("joining %s (%q) on %s", label(n), n.SSID, m.Iface), nil
}

// idOf is the supplicant's id for the network at idx, -1 when it has
// none; m.mu is held.
func (m *Manager) idOf(idx int) int {
	for sid, i := range m.ids {
		if i == idx {
			return sid
		}
	}
	return -1
}

// find is the index of the network named network (its name, else its
// SSID), -1 for none; m.mu is held.
func (m *Manager) find(network string) int {
	for _, byName := range []bool{true, false} {
		for i, n := range m.networks {
			if !n.Gone && ((byName && n.Name == network) || (!byName && n.SSID == network)) {
				return i
			}
		}
	}
	return -1
}

// Forget drops a network ctl wifi connect added: from the supplicant,
// the store and the configuration file. The profile's stay.
func (m *Manager) Forget(ctx context.Context, network string) (string, error) {
	m.mu.Lock()
	idx := m.find(network)
	if idx < 0 {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: %q is not one of the host's networks", api.ErrNoNetwork, network)
	}
	n := m.networks[idx]
	if !n.Added {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: %s is the profile's network: take it out of the profile's wifi block", api.ErrBadRequest, n.Name)
	}
	id := m.idOf(idx)
	delete(m.ids, id)
	delete(m.wrong, idx)
	delete(m.problems, idx)
	m.networks[idx].Gone = true
	m.networks[idx].Passphrase = ""
	ctrl := m.ctrl
	m.Store.Added = slices.DeleteFunc(m.Store.Added, func(s Saved) bool { return s.SSID == n.SSID })
	err := m.Store.Save()
	m.mu.Unlock()
	if err != nil {
		m.Log.Warn("forget the wifi network's passphrase", "network", label(n), "err", err)
	}
	if ctrl != nil && id >= 0 {
		if err := ctrl.OK("REMOVE_NETWORK "+strconv.Itoa(id), reqTimeout); err != nil {
			return "", err
		}
	}
	if err := m.WriteConf(); err != nil {
		m.Log.Warn("write the wifi configuration", "err", err)
	}
	return fmt.Sprintf("forgot %s", label(n)), nil
}

// newOpen says whether n is an open network the supplicant does not know
// yet (id < 0): kept like one with a passphrase.
func newOpen(n Network, id int) bool { return n.Security == config.WifiOpen && id < 0 }

// remember keeps n's passphrase in the store.
func (m *Manager) remember(n Network) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n.Added {
		m.Store.Added = slices.DeleteFunc(m.Store.Added, func(s Saved) bool { return s.SSID == n.SSID })
		m.Store.Added = append(m.Store.Added, Saved{SSID: n.SSID, Security: n.Security, Passphrase: n.Passphrase})
	} else {
		if m.Store.Passphrases == nil {
			m.Store.Passphrases = map[string]string{}
		}
		m.Store.Passphrases[n.Name] = n.Passphrase
	}
	return m.Store.Save()
}
