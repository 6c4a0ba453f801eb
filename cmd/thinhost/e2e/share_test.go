package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/internal/testenv"
)

// smbclient runs Debian's smbclient against share on the forwarded port.
func (h *testHost) smbclient(t *testing.T, share, user, password string, extra []string, commands string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(h.fwd[445], ":")
	args := append([]string{"//" + host + "/" + share, "-p", port, "-U", user + "%" + password}, extra...)
	args = append(args, "-c", commands)
	out, err := exec.Command("smbclient", args...).CombinedOutput()
	return string(out), err
}

// TestShares is the file-share issue's acceptance, with real clients
// (Debian's smbclient, and go-smb2 where a client must send what
// smbclient tidies away) through `run --forward`: a 100 MiB file goes in
// and comes back identical, also after a reboot; a read-only share, a
// wrong password and SMB1 are refused; symlinks leaving a share and ".."
// paths give nothing. Built without serve_on_host_network, smbd listens on
// loopback only.
func TestShares(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "smbclient")
	debugfs := testenv.NeedTool(t, "debugfs")
	root := testenv.RepoRoot()
	lock := testCache(t)
	dir := t.TempDir()
	pwRaw := make([]byte, 12)
	rand.Read(pwRaw)
	password := hex.EncodeToString(pwRaw)
	guest := bareGuest(t)
	build := func(name string, vars ...string) string {
		img := filepath.Join(dir, name)
		args := append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img,
			guest[0], guest[1], "-var", "guest_autostart=false", "-var", "share_password=" + password, "--lock", lock}, vars...)
		if stdout, stderr, code := runCLI(t, args...); code != 0 {
			t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
		}
		return img
	}
	img := build("shares.img")

	// Boot 1: the shares are created; a 100 MiB file goes in and back.
	h := bootHost(t, img, 1024, 445)
	sh := h.ctl(t, "shares")
	t.Logf("ctl shares:\n%s", sh)
	for _, want := range []string{"user      thin", "password  the profile's password, which the host keeps only as its NT hash", "0.0.0.0:445",
		`net use Z: \\10.0.3.1\files /user:thin /persistent:yes`, `net use M: \\10.0.3.1\media`, "/data/shares/files", "read-only"} {
		if !strings.Contains(sh, want) {
			t.Errorf("ctl shares lacks %q", want)
		}
	}
	if st := h.ctl(t, "status"); !strings.Contains(st, "smbd") || !strings.Contains(st, "running") {
		t.Errorf("smbd is not among the running services:\n%s", st)
	}
	// The stamp service (share_user, in the system image as its root)
	// wrote into the share as the share user, with the zone file tzdata
	// ships: SMB reads what it wrote and may overwrite it.
	stamp, mine := filepath.Join(dir, "stamp.txt"), filepath.Join(dir, "mine.txt")
	os.WriteFile(mine, []byte("overwritten from SMB\n"), 0o644)
	var stampOut string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		out, err := h.smbclient(t, "files", "thin", password, nil, "get service-stamp.txt "+stamp+"; put "+mine+" service-stamp.txt")
		if err == nil || time.Now().After(deadline) {
			stampOut = fmt.Sprintf("%v\n%s", err, out)
			break
		}
	}
	if b, err := os.ReadFile(stamp); err != nil || !regexp.MustCompile(`^CES?T written by a service\n$`).Match(b) {
		t.Errorf("the stamp service's file in the share: %q, %v\n%s\n%s", b, err, stampOut, h.ctl(t, "logs"))
	} else if !strings.Contains(stampOut, "putting file") {
		t.Errorf("overwriting the stamp service's file from SMB:\n%s", stampOut)
	}

	big := filepath.Join(dir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 100<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sum := imagetest.Hash(t, big)
	start := time.Now()
	if out, err := h.smbclient(t, "files", "thin", password, nil, "put "+big+" big.bin"); err != nil {
		t.Fatalf("put 100 MiB: %v\n%s", err, out)
	}
	put := time.Since(start)
	back := filepath.Join(dir, "back.bin")
	start = time.Now()
	if out, err := h.smbclient(t, "files", "thin", password, nil, "get big.bin "+back); err != nil {
		t.Fatalf("get 100 MiB: %v\n%s", err, out)
	}
	t.Logf("100 MiB through the forward: put %.1fs, get %.1fs", put.Seconds(), time.Since(start).Seconds())
	if got := imagetest.Hash(t, back); got != sum {
		t.Fatalf("the file came back different: sha256 %x, sent %x", got, sum)
	}

	// What must be refused.
	attempts, through := 0, 0
	refused := func(what string, err error, out string, wantIn ...string) {
		t.Helper()
		attempts++
		if err == nil {
			through++
			t.Errorf("%s: got through:\n%s", what, out)
			return
		}
		for _, w := range wantIn {
			if strings.Contains(out, w) {
				return
			}
		}
		t.Logf("%s: refused (%v): %s", what, err, strings.TrimSpace(out))
	}
	out, err := h.smbclient(t, "media", "thin", password, nil, "put "+big+" nope.bin")
	if err == nil && !strings.Contains(out, "NT_STATUS") {
		through++
		t.Errorf("read-only share took a write:\n%s", out)
	}
	attempts++
	out, err = h.smbclient(t, "files", "thin", "wrong-"+password, nil, "ls")
	refused("wrong password", err, out, "NT_STATUS_LOGON_FAILURE")
	out, err = h.smbclient(t, "files", "thin", password, []string{"-m", "NT1", "--option=client min protocol=NT1"}, "ls")
	refused("SMB1", err, out, "protocol negotiation failed")
	out, err = h.smbclient(t, "files", "guest", "", []string{"-N"}, "ls")
	refused("guest access", err, out)
	h.powerOff(t)

	// Symlinks made in the share while the host is off: one to /etc, one
	// climbing out of the share, one that stays inside it.
	data := dataLoopMode(t, img, true)
	for _, c := range []string{"mkdir /shares/files/sub", "sif /shares/files/sub uid 1000", "symlink /shares/files/etc-link /etc",
		"symlink /shares/files/up ../../state", "symlink /shares/files/ok-link sub"} {
		if out, err := exec.Command(debugfs, "-w", "-R", c, data).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v\n%s", c, err, out)
		}
	}
	exec.Command("losetup", "-d", data).Run()

	// Boot 2: the file is still there; nothing escapes the share.
	h = bootHost(t, img, 1024, 445)
	again := filepath.Join(dir, "again.bin")
	if out, err := h.smbclient(t, "files", "thin", password, nil, "get big.bin "+again); err != nil {
		t.Fatalf("get after reboot: %v\n%s", err, out)
	}
	if got := imagetest.Hash(t, again); got != sum {
		t.Errorf("after a reboot the file is different: %x, want %x", got, sum)
	}
	out, err = h.smbclient(t, "files", "thin", password, nil, "get etc-link/passwd "+filepath.Join(dir, "passwd"))
	refused("symlink to /etc (smbclient)", err, out, "NT_STATUS_OBJECT_PATH_NOT_FOUND")
	out, err = h.smbclient(t, "files", "thin", password, nil, "ls up/*")
	refused("symlink out of the share (smbclient)", err, out, "NT_STATUS_OBJECT_NAME_NOT_FOUND")
	if out, err := h.smbclient(t, "files", "thin", password, nil, "put "+big+" sub/in.bin; ls ok-link/*"); err != nil || !strings.Contains(out, "in.bin") {
		t.Errorf("a symlink inside the share should work: %v\n%s", err, out)
	}
	// go-smb2 sends paths as given, "..\" included (smbclient would tidy
	// them away before they reach the server).
	conn, err := net.Dial("tcp", h.fwd[445])
	if err != nil {
		t.Fatal(err)
	}
	sess, err := (&smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: "thin", Password: password}}).Dial(conn)
	if err != nil {
		t.Fatalf("go-smb2 login: %v", err)
	}
	defer sess.Logoff()
	share, err := sess.Mount("files")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`..\..\state\boots`, `..\media`, `sub\..\..\..\state\boots`, `..\..\..\etc\passwd`,
		`etc-link\passwd`, `up\boots`, `etc-link\shadow`} {
		b, err := share.ReadFile(p)
		refused("go-smb2 read "+p, err, string(b))
	}
	if _, err := share.ReadDir(`..`); true {
		refused(`go-smb2 list ..`, err, "")
	}
	if err := share.WriteFile(`..\..\state\planted`, []byte("x"), 0o644); true {
		refused(`go-smb2 write ..\..\state\planted`, err, "")
	}
	t.Logf("%d attempts to write a read-only share, log in wrongly, speak SMB1, or escape a share: %d got through", attempts, through)

	// The network cable pulled out and plugged in again (QMP set_link):
	// hostd drops the address, asks DHCP again once the cable is back,
	// and the share answers again.
	const addrLine = "thinhost: network eth0 10.0.2.15/24"
	before := h.con.Count(addrLine)
	if err := h.m.SetLink(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.con.Await("thinhost: network eth0: cable unplugged"):
	case <-time.After(time.Minute):
		t.Fatalf("hostd did not see the cable pulled out:\n%s", h.tail())
	}
	if err := h.m.SetLink(true); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); h.con.Count(addrLine) == before; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("no address after the cable was plugged in again:\n%s", h.tail())
		}
	}
	os.Remove(again)
	if out, err := h.smbclient(t, "files", "thin", password, nil, "get big.bin "+again); err != nil || imagetest.Hash(t, again) != sum {
		t.Errorf("the share after the cable came back: %v\n%s", err, out)
	}
	h.powerOff(t)

	// Built without serve_on_host_network and api_on_host_network (as
	// laptop.hcl is): the host's network reaches neither. The forwards
	// arrive there, as a neighbour's connections would: QEMU accepts them
	// on the build machine, and finds nothing listening in the host.
	h = bootHost(t, build("private.img", "-var", "share_network=false", "-var", "api_network=false"), 1024, 445)
	if out, err := h.smbclient(t, "files", "thin", password, nil, "ls"); err == nil {
		t.Errorf("the host's network reached a guest-only share:\n%s", out)
	}
	if api := h.con.Matching("thinhost: api on "); len(api) != 1 || !strings.HasPrefix(api[0], "thinhost: api on 127.0.0.1:8484") || strings.Contains(api[0], "https") {
		t.Errorf("without api_on_host_network the API should be on loopback alone: %q", api)
	}
	if h.fp != "" {
		t.Errorf("without api_on_host_network the host showed a certificate: %s", h.fp)
	}
	for _, scheme := range []string{"http", "https"} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if resp, err := c.Get(scheme + "://" + h.api + "/v1/status"); err == nil {
			resp.Body.Close()
			t.Errorf("the host's network reached the API over %s: %s", scheme, resp.Status)
		}
	}
	// No API on the forward: the power button.
	if err := h.m.Powerdown(); err != nil {
		t.Fatal(err)
	}
	h.awaitPowerOff(t)
}
