package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/cmd/thinhost/cli"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestWifi is the laptop-life issue's Wi-Fi acceptance: inside a booted
// test host, two mac80211_hwsim radios; the test makes the second an
// access point (hostapd, WPA2) with a DHCP server (dnsmasq) on the
// serial console's debug shell, and the host joins it on the first from
// its profile's wifi block (testdata/wifi.hcl): the network with the
// wrong passphrase, tried first, is reported and given up on; the right
// one is joined and gets an address by DHCP, which ctl wifi shows; the
// wrong one, given its passphrase again with ctl wifi connect, is joined. The
// passphrases are in no byte of the boot files or the system image.
func TestWifi(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	const right, wrong = "the right passphrase", "not the passphrase"
	profile := filepath.Join(testenv.RepoRoot(), "cmd", "thinhost", "e2e", "testdata", "wifi.hcl")
	img := filepath.Join(t.TempDir(), "wifi.img")
	stdout, stderr, code := runCLI(t, "build", profile, "-o", img, "--lock", testCache(t), "-var", "right_psk="+right, "-var", "wrong_psk="+wrong)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	parts := imagetest.Check(t, img)
	for _, secret := range []string{right, wrong} {
		for _, p := range parts[:len(parts)-1] {
			if partitionContains(t, img, p, []byte(secret)) {
				t.Errorf("partition %s carries a wifi passphrase", p.Name)
			}
		}
		if !partitionContains(t, img, parts[len(parts)-1], []byte(secret)) {
			t.Errorf("the empty data partition does not carry the first boot's passphrase")
		}
	}

	// The access point's script is on a second disk, so one short line
	// runs it: the shell's editor redraws a long line at every key.
	sys := "/system/lib64/ld-linux-x86-64.so.2 --library-path /system/lib/x86_64-linux-gnu:/system/usr/lib/x86_64-linux-gnu /system"
	conf := strings.Join([]string{"interface=wlan1", "driver=nl80211", "ssid=thinhost test", "hw_mode=g", "channel=6",
		"wpa=2", "wpa_key_mgmt=WPA-PSK", "rsn_pairwise=CCMP", "wpa_passphrase=" + right}, `\n`)
	script := strings.Join([]string{
		"ls /sys/class/net",
		// dnsmasq, run as root, wants root's user and group by name.
		"echo root:x:0:0:root:/:/bin/false >> /etc/passwd",
		"echo root:x:0: >> /etc/group",
		"ip addr add 10.0.9.1/24 dev wlan1",
		"ip link set wlan1 up",
		fmt.Sprintf("printf '%s\\n' > /tmp/ap.conf", conf),
		sys + "/usr/sbin/hostapd -B /tmp/ap.conf",
		sys + "/usr/sbin/dnsmasq --conf-file=/dev/null --interface=wlan1 --bind-interfaces --port=0 --dhcp-range=10.0.9.50,10.0.9.60,255.255.255.0,1h --dhcp-leasefile=/tmp/leases --user=root --group=root --pid-file=/tmp/dnsmasq.pid --log-dhcp",
		"echo access-point-$((6*7))",
	}, "\n") + "\n"
	disk := filepath.Join(t.TempDir(), "ap.sh")
	if err := os.WriteFile(disk, []byte(script+strings.Repeat("\n", 4096-len(script)%4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, sh := startShellHost(t, qemu.Config{Image: img, MemoryMiB: 1024, Disks: []string{disk}})
	h.waitReady(t)
	if !h.con.Seen("took the first-boot secrets") {
		t.Errorf("hostd did not take the first-boot secrets:\n%s", h.tail())
	}
	// The radios started off (rfkill.default_state=0 on the command
	// line, which hostd's module loader gives rfkill): hostd switched
	// Wi-Fi on for the profile's wifi block.
	if !h.con.Seen(`module loaded with the kernel command line's options" svc=hostd module=rfkill options="default_state=0"`) {
		t.Errorf("rfkill was not loaded with the command line's option:\n%s", h.tail())
	}
	// The debug shell on the serial console, then the access point.
	sh.run(t, "echo shell-$((6*7))", "shell-42")
	sh.typeLine("gosh /dev/vdb")
	select {
	case <-h.con.Await("access-point-42"):
	case <-time.After(time.Minute):
		t.Fatalf("the access point's script did not finish:\n%s", h.tail())
	}
	// joined waits until ctl wifi shows the access point joined with an
	// address from its DHCP server, and ok says the rest is as wanted.
	joined := func(what string, ok func(out string) bool) string {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			out := h.ctl(t, "wifi")
			if strings.Contains(out, `joined "thinhost test"`) && strings.Contains(out, ": 10.0.9.") && ok(out) {
				t.Logf("ctl wifi:\n%s", out)
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n%s\n%s", what, out, h.tail())
			}
			time.Sleep(2 * time.Second)
		}
	}
	network := func(out, name string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, name+" ") {
				return l
			}
		}
		return ""
	}
	// The wrong passphrase, tried first (the higher priority), is said;
	// the right network is joined.
	out := joined("the host never joined the access point", func(string) bool { return true })
	if w, r := network(out, "wrong"), network(out, "right"); !strings.Contains(w, "refused its passphrase") || !strings.HasSuffix(strings.TrimSpace(r), "-") {
		t.Errorf("the networks' problems:\nwrong: %s\nright: %s", w, r)
	}
	// The console is a serial line, seconds behind the API under TCG
	// when the log is busy: its lines are awaited.
	for what, line := range map[string]string{
		"said the passphrase was refused": `network wrong ("thinhost test"): the access point refused the passphrase`,
		"showed the address":              `from DHCP on "thinhost test"`,
	} {
		select {
		case <-h.con.Await(line):
		case <-time.After(time.Minute):
			t.Errorf("the console never %s:\n%s", what, h.tail())
		}
	}
	// A scan finds the access point, known to the host. The supplicant
	// then tries the higher priority again: refused a second time, it is
	// given up on, and the host stays on the right one.
	scan := h.ctl(t, "wifi", "scan")
	if !strings.Contains(scan, `"thinhost test"`) || !strings.Contains(scan, "wpa2") || !strings.Contains(scan, "wrong") {
		t.Errorf("ctl wifi scan:\n%s", scan)
	}
	joined("the wrong passphrase was not given up on", func(out string) bool {
		if strings.Contains(network(out, "wrong"), "(2 times); tried again in 10m0s") {
			return true
		}
		// Joined, the supplicant looks for better networks only when it
		// scans, and skips one whose refusal's back-off has not passed.
		h.ctl(t, "wifi", "scan")
		return false
	})
	select {
	case <-h.con.Await(`network wrong ("thinhost test"): the passphrase is wrong`):
	case <-time.After(time.Minute):
		t.Errorf("the console never said the network was given up on:\n%s", h.tail())
	}
	// As a person fixes it: the right passphrase for that network, on
	// ctl's standard input. It is joined at once (ctl waits for the
	// address) and its problem is gone.
	var fixOut, fixErr syncBuffer
	fix := append(h.ctlArgs(testToken), "wifi", "connect", "wrong", "--passphrase-stdin")
	if code := cli.Main(context.Background(), fix, strings.NewReader(right+"\n"), &fixOut, &fixErr); code != 0 {
		t.Fatalf("ctl wifi connect wrong: exit %d\n%s%s\n%s", code, fixOut.String(), fixErr.String(), h.tail())
	}
	if !strings.Contains(fixOut.String(), `joined "thinhost test" on wlan0: 10.0.9.`) {
		t.Errorf("ctl wifi connect did not wait for the address:\n%s", fixOut.String())
	}
	joined("the network with its passphrase given again still has a problem", func(out string) bool {
		return strings.HasSuffix(strings.TrimSpace(network(out, "wrong")), "-")
	})
	if st := h.ctl(t, "status"); !strings.Contains(st, "wifi      wlan0 joined \"thinhost test\"") || !strings.Contains(st, "health    ok") {
		t.Errorf("ctl status:\n%s", st)
	}
	// Airplane mode on wlan0's radio (as the airplane key, or the
	// laptop's firmware, switches it): ctl wifi says so; ctl wifi connect
	// switches it on and joins again.
	sh.run(t, "for r in /sys/class/net/wlan0/phy80211/rfkill*; do echo 1 > $r/soft; done; echo airplane-$((6*7))", "airplane-42")
	for deadline := time.Now().Add(time.Minute); ; {
		out := h.ctl(t, "wifi")
		if strings.Contains(out, "the Wi-Fi radio is switched off (airplane mode, phy0)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctl wifi does not say the radio is off:\n%s\n%s", out, h.tail())
		}
		time.Sleep(2 * time.Second)
	}
	if out := h.ctl(t, "wifi", "connect", "right", "--wait", "2m"); !strings.Contains(out, `joined "thinhost test" on wlan0: 10.0.9.`) {
		t.Errorf("ctl wifi connect out of airplane mode:\n%s", out)
	}
	if out := h.ctl(t, "wifi"); strings.Contains(out, "switched off") {
		t.Errorf("ctl wifi after connect:\n%s", out)
	}
	// Never the passphrases in the log.
	logs := h.ctl(t, "logs")
	if bytes.Contains([]byte(logs), []byte(right)) || bytes.Contains([]byte(logs), []byte(wrong)) {
		t.Errorf("hostd's log holds a passphrase")
	}
	h.powerOff(t)
	// The first boot took the record and zeroed it before it made the
	// filesystem: the data partition's sector after the marker's holds
	// none.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, len(layout.FirstBootMagic))
	if _, err := f.ReadAt(rec, int64(parts[len(parts)-1].Start)*512+layout.DataMarkerSize); err != nil {
		t.Fatal(err)
	}
	if string(rec) == layout.FirstBootMagic {
		t.Errorf("the first-boot secrets are still on the data partition after the first boot")
	}
}
