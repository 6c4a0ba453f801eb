package e2e

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
)

// bareGuest builds the bare test guest (testguest.BuildBare) for
// examples/qemu-test.hcl's test_guest variable: it stands in for Windows
// as the Linux test guest does, counting its boots on its disk and
// powering off on the ACPI button, but is up a second after QEMU starts
// where Linux under TCG inside TCG takes a minute or more.
func bareGuest(t *testing.T) []string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bare-guest.elf")
	if err := testguest.BuildBare(context.Background(), testenv.RepoRoot(), out); err != nil {
		t.Fatal(err)
	}
	return []string{"-var", "test_guest=" + out}
}

// TestGuestLifecycle is the Windows-guest issue's acceptance with the bare
// test guest standing in for Windows: the booted host starts the guest
// defined in examples/qemu-test.hcl (under TCG inside TCG), whose console
// lines reach the API's log; a snapshot, a write after it, and a reset
// that brings back the disk without that write; the host's page in a
// browser (checkPage), which resets it again; and a host power-off that
// shuts the guest down first.
func TestGuestLifecycle(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	lock := testCache(t)
	img := filepath.Join(t.TempDir(), "guest.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img,
		"--lock", lock, "-var", "guest_display=vnc"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	// The system image carries what runs guests.
	for _, f := range []string{"/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", "/usr/bin/swtpm",
		"accel-tcg-x86_64.so", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "/usr/share/qemu/bios-256k.bin",
		"/vms/guest/kernel", "/usr/share/qemu/keymaps/en-us"} {
		if !strings.Contains(readManifest(t, img+".manifest.json"), f) {
			t.Errorf("the system image's manifest lacks %s", f)
		}
	}

	h := bootHost(t, img, 1536, 5900)
	con := h.con
	ready := time.Now()
	ctl := func(args ...string) string { t.Helper(); return h.ctl(t, args...) }
	// logCount counts the guest's console lines containing text in the
	// host's log, read through the API.
	logCount := func(text string) int {
		return strings.Count(ctl("logs"), "thinhost-guest: "+text)
	}
	waitLog := func(text string, n int, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for logCount(text) < n {
			if time.Now().After(deadline) {
				t.Fatalf("the guest's %q was seen %d times, want %d; host console:\n%s", text, logCount(text), n, strings.Join(con.Tail(), "\n"))
			}
			time.Sleep(2 * time.Second)
		}
	}

	// Autostart: the guest's first console line, then its first boot.
	for !con.Seen(testguest.Marker + "up") {
		if time.Since(ready) > 5*time.Minute {
			t.Fatalf("no guest console line within 5 minutes of ready:\n%s", strings.Join(con.Tail(), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("guest's first console line %.1fs after hostd ready", time.Since(ready).Seconds())
	waitLog("found=none", 1, 3*time.Minute)
	waitLog("wrote=boot-1", 1, time.Minute)
	st := ctl("vm", "guest", "status")
	t.Logf("ctl vm guest status:\n%s", st)
	// KVM when the emulated machine's KVM works (QEMU's TCG with
	// -cpu max offers VMX to the host, and hostd's probe finds it usable),
	// else TCG inside TCG.
	if !strings.Contains(st, "guest  running  tcg") && !strings.Contains(st, "guest  running  kvm") {
		t.Errorf("vm status: %q", st)
	}
	// The guest's memory gets huge pages: QEMU asks for them, which is
	// all that transparent_hugepage=madvise gives them to, and the
	// kernel's lowered reserve (hostd's relaxReserve) leaves them be.
	if m := regexp.MustCompile(`vm guest: memory in use (.+), (.+) of it in 2 MiB pages`).FindStringSubmatch(st); m == nil || strings.HasPrefix(m[2], "0 ") {
		t.Errorf("vm status shows no guest memory in huge pages: %q", st)
	}

	// VNC on the host's network: the password hostd made at the guest's
	// first start opens it, another does not; a new one works at once.
	vncPassword := func(action string) string {
		t.Helper()
		pw, ok := strings.CutPrefix(strings.TrimSpace(ctl("vm", "guest", action)), "vnc 0.0.0.0:5900 password ")
		if !ok || len(pw) != 8 {
			t.Fatalf("ctl vm guest %s: %q", action, pw)
		}
		return pw
	}
	first := vncPassword("vnc-password")
	if err := vncLogin(h.fwd[5900], first); err != nil {
		t.Errorf("VNC with the password hostd shows: %v", err)
	}
	if err := vncLogin(h.fwd[5900], "wrong-pw"); err == nil {
		t.Errorf("VNC took a wrong password")
	}
	second := vncPassword("new-vnc-password")
	if err := vncLogin(h.fwd[5900], first); err == nil {
		t.Errorf("VNC still took the old password after new-vnc-password")
	}
	if err := vncLogin(h.fwd[5900], second); err != nil {
		t.Errorf("VNC with the new password: %v", err)
	}

	// Snapshot: an ACPI shutdown, the disk frozen as the base, the guest
	// started on an overlay; it finds boot 1 and writes boot 2 there.
	t.Log(ctl("vm", "guest", "snapshot"))
	waitLog("power button: powering off", 1, time.Minute)
	waitLog("found=boot-1", 1, 4*time.Minute)
	waitLog("wrote=boot-2", 1, time.Minute)

	// Reset drops the overlay: the guest finds boot 1 again, not boot 2.
	t.Log(ctl("vm", "guest", "reset"))
	waitLog("found=boot-1", 2, 4*time.Minute)
	if n := logCount("found=boot-2"); n != 0 {
		t.Errorf("after reset the guest found the write made after the snapshot")
	}
	t.Logf("reset: the disk came back without the write made after the snapshot")

	// The host's page, in a browser: the same reset from there.
	checkPage(t, h)

	// Suspend, what closing the lid does: the guest paused, the host
	// asleep in S3 (QEMU's run state says so); woken as a key or the lid
	// would, the guest continues (its ACPI shutdown at the power-off
	// below shows its CPU runs again).
	t.Log(ctl("suspend"))
	waitRunState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st, err := h.m.RunState()
			if err == nil && st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("QEMU's run state %q (%v), want %q:\n%s", st, err, want, strings.Join(con.Tail(), "\n"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRunState("suspended")
	if !con.Seen("guests_paused=[guest]") {
		t.Errorf("the host suspended without pausing the guest:\n%s", strings.Join(con.Tail(), "\n"))
	}
	if err := h.m.Wakeup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-con.Await("thinhost: resumed"):
	case <-time.After(2 * time.Minute):
		t.Fatalf("the host did not say it resumed:\n%s", strings.Join(con.Tail(), "\n"))
	}
	waitRunState("running")
	t.Log("suspend: the guest paused, the host in S3, woken, the guest continued")

	// Host power-off: the guest goes first, then the data partition.
	h.powerOff(t)
	order := []string{"thinhost: powering off", "thinhost: stopping vm-guest", testguest.Marker + "power button: powering off",
		`msg="service stopped" svc=hostd svc=vm-guest`, "data partition unmounted"}
	tail := strings.Join(con.Tail(), "\n")
	at := 0
	for _, want := range order {
		i := strings.Index(tail[at:], want)
		if i < 0 {
			t.Fatalf("power-off: %q missing or out of order (want %q); console:\n%s", want, order, tail)
		}
		at += i + len(want)
	}
	t.Logf("host power-off stopped the guest first (ACPI), then unmounted the data partition")
}

func readManifest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vncLogin opens an RFB 3.8 session at addr with VNC authentication
// (RFC 6143 7.2.2: the server's 16-byte challenge encrypted with DES, the
// password's bytes bit-reversed as the key) and returns nil when the server
// accepts password.
func vncLogin(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	version := make([]byte, 12)
	if _, err := io.ReadFull(c, version); err != nil {
		return fmt.Errorf("read the server's version: %w", err)
	}
	if _, err := c.Write([]byte("RFB 003.008\n")); err != nil {
		return err
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil || n[0] == 0 {
		return fmt.Errorf("the server offers no security type (%q): %v", version, err)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c, types); err != nil {
		return err
	}
	if !bytes.Contains(types, []byte{2}) {
		return fmt.Errorf("the server does not ask for a VNC password (security types %v)", types)
	}
	if _, err := c.Write([]byte{2}); err != nil {
		return err
	}
	challenge := make([]byte, 16)
	if _, err := io.ReadFull(c, challenge); err != nil {
		return fmt.Errorf("read the challenge: %w", err)
	}
	key := make([]byte, 8)
	copy(key, password)
	for i, b := range key {
		key[i] = bits.Reverse8(b)
	}
	block, err := des.NewCipher(key)
	if err != nil {
		return err
	}
	response := make([]byte, 16)
	block.Encrypt(response[:8], challenge[:8])
	block.Encrypt(response[8:], challenge[8:])
	if _, err := c.Write(response); err != nil {
		return err
	}
	var result [4]byte
	if _, err := io.ReadFull(c, result[:]); err != nil {
		return fmt.Errorf("read the result: %w", err)
	}
	if binary.BigEndian.Uint32(result[:]) != 0 {
		return fmt.Errorf("the server refused the password")
	}
	return nil
}

// TestGuestShutsDown: a guest that shuts itself down (as Windows does from
// its Start menu) with on_shutdown = "poweroff" takes the host with it,
// cleanly: the appliance is off when its Windows is.
func TestGuestShutsDown(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	root := testenv.RepoRoot()
	img := filepath.Join(t.TempDir(), "shuts-down.img")
	stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(root, "examples", "qemu-test.hcl"), "-o", img,
		"--lock", testCache(t), "-var", "guest_shuts_down=true"}, bareGuest(t)...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	h := startHost(t, img, 1024, nil, nil)
	select {
	case <-h.m.Done():
	case <-time.After(5 * time.Minute):
		t.Fatalf("the host did not power off after its guest shut down:\n%s", h.tail())
	}
	tail := h.tail()
	at := 0
	for _, want := range []string{api.ReadyLine, testguest.Marker + "shutting down by itself", "vm shut down by itself",
		"thinhost: powering off (vm guest shut itself down)", "data partition unmounted"} {
		i := strings.Index(tail[at:], want)
		if i < 0 {
			t.Fatalf("%q missing, or out of order:\n%s", want, tail)
		}
		at += i + len(want)
	}
}
