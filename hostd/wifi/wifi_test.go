package wifi

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/testenv"
)

func TestPSK(t *testing.T) {
	// IEEE 802.11i-2004, annex H.4.
	if got := hex.EncodeToString(PSK("password", "IEEE")); got != "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e" {
		t.Errorf("PSK = %s", got)
	}
}

func TestRenderHoldsNoSyntaxFromValues(t *testing.T) {
	nets := []Network{
		{WifiNetwork: config.WifiNetwork{Name: "home", SSID: "Home\"\n}\nnetwork={", Security: config.WifiWPA2, Priority: 5}, Passphrase: "a \"quoted\"\npass"},
		{WifiNetwork: config.WifiNetwork{Name: "cafe", SSID: "Café", Security: config.WifiWPA3, Hidden: true}, Passphrase: "correct horse"},
		{WifiNetwork: config.WifiNetwork{Name: "none", SSID: "x", Security: config.WifiWPA2WPA3}},
		{WifiNetwork: config.WifiNetwork{Name: "open", SSID: "Train", Security: config.WifiOpen}},
	}
	// The first passphrase has a newline: refused.
	if _, _, err := Render("", "/run/w", nets); err == nil {
		t.Fatal("a passphrase with a newline was rendered")
	}
	nets[0].Passphrase = `a "quoted" pass}`
	conf, ids, err := Render("DE", "/run/w", nets)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != 0 || ids[1] != 1 || ids[2] != 3 {
		t.Errorf("ids = %v, want [0 1 3] (the network without a passphrase left out, the open one in)", ids)
	}
	s := string(conf)
	if strings.Count(s, "network={") != 3 || !strings.Contains(s, "ssid="+hex.EncodeToString([]byte("Train"))+"\n\tkey_mgmt=NONE\n\tbgscan=") || strings.Contains(s, "quoted") || strings.Contains(s, "horse") || strings.Contains(s, "Home") {
		t.Errorf("values reached the file as text:\n%s", s)
	}
	for _, want := range []string{"country=DE\n", "ssid=" + hex.EncodeToString([]byte("Café")), "scan_ssid=1", "key_mgmt=SAE", "ieee80211w=2",
		"priority=5", "psk=" + hex.EncodeToString(PSK(`a "quoted" pass}`, nets[0].SSID))} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in:\n%s", want, s)
		}
	}
	if _, _, err := Render("de", "/run/w", nets); err == nil {
		t.Error("a lower-case country was rendered")
	}
}

func TestParse(t *testing.T) {
	ev, ok := ParseEvent(`<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid="a \"b\" c\x21" auth_failures=2 duration=20 reason=WRONG_KEY`)
	if !ok || ev.Name != "CTRL-EVENT-SSID-TEMP-DISABLED" || ev.Fields["id"] != "1" || ev.Fields["ssid"] != `a "b" c!` ||
		ev.Fields["reason"] != "WRONG_KEY" || ev.Fields["auth_failures"] != "2" {
		t.Errorf("ParseEvent = %+v", ev)
	}
	ev, _ = ParseEvent("<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=4 id_str=]")
	if s := idRE.FindStringSubmatch(ev.Text); s == nil || s[1] != "4" {
		t.Errorf("no id in %q", ev.Text)
	}
	if _, ok := ParseEvent("OK\n"); ok {
		t.Error("a reply parsed as an event")
	}
	res := ParseScanResults("bssid / frequency / signal level / flags / ssid\n" +
		"02:00:00:00:01:00\t2412\t-30\t[WPA2-PSK-CCMP][ESS]\tthinhost\\x20test\n" +
		"02:00:00:00:02:00\t5180\t-70\t[WPA2-PSK+SAE-CCMP][ESS]\tboth\n" +
		"02:00:00:00:03:00\t5180\t-80\t[ESS]\t\n")
	if len(res) != 3 || res[0].SSID != "thinhost test" || res[0].Security() != config.WifiWPA2 || res[1].Security() != config.WifiWPA2WPA3 || res[2].Security() != "open" || res[1].Frequency != 5180 || res[0].Signal != -30 {
		t.Errorf("ParseScanResults = %+v", res)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add(`<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid="a \"b\"" reason=WRONG_KEY`)
	f.Add(`<2>X k="\x` + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		ParseEvent(s)
		Unescape(s)
		ParseScanResults(s)
		ParseKV(s)
	})
}

// supplicant runs this machine's wpa_supplicant with its wired driver on
// loopback: the same control socket and configuration parser as on a
// laptop, without a radio.
func supplicant(t *testing.T, m *Manager) {
	t.Helper()
	testenv.NeedRoot(t)
	bin := testenv.NeedTool(t, "wpa_supplicant")
	if err := m.WriteConf(); err != nil {
		t.Fatal(err)
	}
	args := m.Args()
	args[len(args)-1] = "wired"
	cmd := exec.Command(bin, args...)
	out, err := os.Create(filepath.Join(m.Dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("wpa_supplicant:\n%s", b)
		}
	})
}

func TestManagerWithSupplicant(t *testing.T) {
	dir, err := os.MkdirTemp("", "wifi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	store := &Store{Path: filepath.Join(dir, "state", "wifi.json"), Passphrases: map[string]string{"home": "home passphrase"}}
	cfg := &config.Wifi{Country: "DE", Networks: []config.WifiNetwork{
		{Name: "office", SSID: "Office", Security: config.WifiWPA2},
		{Name: "home", SSID: "Home", Security: config.WifiWPA2WPA3, Priority: 3},
		{Name: "train", SSID: "Train WiFi", Security: config.WifiOpen},
	}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewManager(log, cfg, "lo", dir, store)
	var lines []string
	m.Console = func(l string) { lines = append(lines, l) }
	supplicant(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var st *api.Wifi
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st = m.Status(); st.Problem == "" && st.State != "" {
			break
		}
	}
	if st.Problem != "" || st.State == "" {
		t.Fatalf("the supplicant never answered: %+v", st)
	}
	if len(st.Networks) != 3 || !strings.Contains(st.Networks[0].Problem, "not known") || st.Networks[1].Problem != "" || st.Networks[2].Problem != "" {
		t.Errorf("networks = %+v: office has no passphrase, home has, the train needs none", st.Networks)
	}
	// The supplicant numbered home and the train (office has no
	// passphrase).
	m.mu.Lock()
	if m.ids[0] != 1 || m.ids[1] != 2 || len(m.ids) != 2 {
		t.Errorf("ids = %v, want 0 -> home, 1 -> train", m.ids)
	}
	m.mu.Unlock()

	// office's passphrase, given: added to the running supplicant, kept.
	if _, err := m.Connect(ctx, api.WifiConnect{Network: "Office", Passphrase: "office passphrase"}); err != nil {
		t.Fatal(err)
	}
	// A new network, and bad requests.
	if _, err := m.Connect(ctx, api.WifiConnect{Network: "Cafe 1", Passphrase: "cafe passphrase"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, api.WifiConnect{Network: "Nowhere"}); err == nil || !strings.Contains(err.Error(), api.ErrNoNetwork.Error()) {
		t.Errorf("an unknown network without a passphrase: %v", err)
	}
	if _, err := m.Connect(ctx, api.WifiConnect{Network: "home", Passphrase: "short"}); err == nil {
		t.Error("a short passphrase was taken")
	}
	if _, err := m.Connect(ctx, api.WifiConnect{Network: "train", Passphrase: "a passphrase"}); err == nil || !strings.Contains(err.Error(), "open network") {
		t.Errorf("a passphrase for an open network: %v", err)
	}
	list, err := m.ctrl.Request("LIST_NETWORKS", reqTimeout)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0\tHome\t", "1\tTrain WiFi\t", "2\tOffice\t", "3\tCafe 1\t"} {
		if !strings.Contains(list, want) {
			t.Errorf("the supplicant's networks lack %q:\n%s", want, list)
		}
	}
	// The supplicant took every field as hostd set it.
	for id, want := range map[int]string{1: "NONE", 2: "WPA-PSK", 3: "WPA-PSK SAE"} {
		if got, err := m.ctrl.Request("GET_NETWORK "+string(rune('0'+id))+" key_mgmt", reqTimeout); err != nil || got != want {
			t.Errorf("network %d key_mgmt = %q, %v; want %q", id, got, err, want)
		}
	}
	// The file's networks and the added ones roam alike.
	for _, id := range []string{"0", "1", "3"} {
		if got, err := m.ctrl.Request("GET_NETWORK "+id+" bgscan", reqTimeout); err != nil || got != `"`+Bgscan+`"` {
			t.Errorf("network %s bgscan = %q, %v", id, got, err)
		}
	}
	kept, err := LoadStore(store.Path)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Passphrases["office"] != "office passphrase" || len(kept.Added) != 1 || kept.Added[0].SSID != "Cafe 1" {
		t.Errorf("store = %+v", kept)
	}
	if fi, err := os.Stat(store.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the store's mode: %v %v", fi, err)
	}

	// The last connect selected "Cafe 1": the others are off until it
	// joins.
	if got, _ := m.ctrl.Request("LIST_NETWORKS", reqTimeout); !strings.Contains(got, "0\tHome\tany\t[DISABLED]") {
		t.Errorf("SELECT_NETWORK left the others on:\n%s", got)
	}
	// Refused passphrases: said at once, given up on after MaxWrongKey;
	// and the networks the selection paused come back.
	for range MaxWrongKey {
		m.handle(ctx, Event{Name: "CTRL-EVENT-SSID-TEMP-DISABLED", Fields: map[string]string{"id": "2", "reason": "WRONG_KEY"}})
	}
	st = m.Status()
	if !strings.Contains(st.Networks[0].Problem, "refused its passphrase (2 times)") {
		t.Errorf("office's problem = %q", st.Networks[0].Problem)
	}
	if got, _ := m.ctrl.Request("LIST_NETWORKS", reqTimeout); !strings.Contains(got, "2\tOffice\tany\t[DISABLED]") || strings.Contains(got, "0\tHome\tany\t[DISABLED]") {
		t.Errorf("office is still tried, or home still paused:\n%s", got)
	}
	// Given up on for WrongKeyRetry only.
	m.retry(0) // office, the first of the manager's networks
	if got, _ := m.ctrl.Request("LIST_NETWORKS", reqTimeout); strings.Contains(got, "2\tOffice\tany\t[DISABLED]") {
		t.Errorf("office is not tried again after the wait:\n%s", got)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "refused the passphrase") || !strings.Contains(lines[1], "the passphrase is wrong") {
		t.Errorf("console lines = %q", lines)
	}

	// A radio switched off is the status's problem, before the
	// supplicant's word; switched on, it is gone.
	off := "the Wi-Fi radio is switched off (airplane mode, phy0)"
	m.Radio = func() string { return off }
	if st := m.Status(); st.Problem != off {
		t.Errorf("problem with the radio off = %q", st.Problem)
	}
	off = ""
	if st := m.Status(); st.Problem != "" {
		t.Errorf("problem with the radio on = %q", st.Problem)
	}

	// Forgotten: the added network leaves the supplicant, the store and
	// the status; the profile's cannot be.
	if _, err := m.Forget(ctx, "office"); err == nil || !strings.Contains(err.Error(), "profile") {
		t.Errorf("forget the profile's network: %v", err)
	}
	if msg, err := m.Forget(ctx, "Cafe 1"); err != nil || msg != `forgot "Cafe 1"` {
		t.Fatalf("Forget = %q, %v", msg, err)
	}
	if got, _ := m.ctrl.Request("LIST_NETWORKS", reqTimeout); strings.Contains(got, "Cafe 1") {
		t.Errorf("the supplicant still has the forgotten network:\n%s", got)
	}
	if after, err := LoadStore(store.Path); err != nil || len(after.Added) != 0 {
		t.Errorf("the store still has it: %+v %v", after, err)
	}
	for _, n := range m.Status().Networks {
		if n.SSID == "Cafe 1" {
			t.Errorf("the status still shows it")
		}
	}
	if _, err := m.Forget(ctx, "Cafe 1"); err == nil {
		t.Error("a network forgotten twice")
	}

	// A restarted hostd (a new manager) renders all three from the store.
	m2 := NewManager(log, cfg, "lo", dir, kept)
	conf, ids, err := Render(m2.Country, m2.CtrlDir(), m2.networks)
	if err != nil || len(ids) != 4 || !strings.Contains(string(conf), hex.EncodeToString([]byte("Cafe 1"))) {
		t.Errorf("the next start's configuration (%v, ids %v):\n%s", err, ids, conf)
	}
}
