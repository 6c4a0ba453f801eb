package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/profiles"
)

// testToken is examples/qemu-test.hcl's API token.
const testToken = "qemu-test-token-not-secret"

// testHost is an image booted under QEMU to hostd's ready line, with the
// management API and any other guest ports forwarded from 127.0.0.1.
type testHost struct {
	m   *qemu.Machine
	con *qemu.Console
	// api is the API's forwarded address; fwd maps other guest ports to
	// theirs.
	api string
	fwd map[int]string
	// fp is the API certificate's fingerprint, read from the console
	// (the forward arrives on the host's network, which speaks HTTPS).
	fp string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bootHost boots img with memMiB of RAM and waits for hostd's ready line.
func bootHost(t *testing.T, img string, memMiB int, guestPorts ...int) *testHost {
	t.Helper()
	return bootHostFirmware(t, img, memMiB, nil, guestPorts...)
}

// bootHostFirmware is bootHost with the given firmware (nil: OVMF as run
// finds it).
func bootHostFirmware(t *testing.T, img string, memMiB int, fw *qemu.Firmware, guestPorts ...int) *testHost {
	t.Helper()
	h := startHost(t, img, memMiB, fw, nil, guestPorts...)
	h.waitReady(t)
	return h
}

// waitReady waits for hostd's ready line.
func (h *testHost) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-h.con.Ready():
	case <-h.m.Done():
		t.Fatalf("QEMU exited before ready:\n%s", h.tail())
	case <-time.After(5 * time.Minute):
		t.Fatalf("not ready:\n%s", h.tail())
	}
	h.readFingerprint()
}

// readFingerprint takes the API certificate's fingerprint from the
// console, where hostd shows it when the API is on the host's network
// (examples/qemu-test.hcl; not laptop.hcl).
func (h *testHost) readFingerprint() {
	h.fp = ""
	for _, l := range h.con.Matching("thinhost: api on ") {
		if m := apiFingerprintRE.FindStringSubmatch(l); m != nil {
			h.fp = m[1]
		}
	}
}

// ctlArgs are ctl's flags for this host: the forward, the fingerprint when
// there is one, and token.
func (h *testHost) ctlArgs(token string) []string {
	args := []string{"ctl", "--addr", h.api, "--token", token}
	if h.fp != "" {
		args = append(args, "--fingerprint", h.fp)
	}
	return args
}

// apiFingerprintRE reads the API certificate's fingerprint off hostd's
// api console line.
var apiFingerprintRE = regexp.MustCompile(`certificate ` + api.APIFingerprintLabel + ` ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})`)

// base is the API's (and the page's) URL through the forward.
func (h *testHost) base() string { return "https://" + h.api }

// spki is the SHA-256 of the API certificate's public key, base64, as
// Chromium's --ignore-certificate-errors-spki-list takes it; read from the
// certificate the host presents, checked against the console's fingerprint.
func (h *testHost) spki(t *testing.T) string {
	t.Helper()
	cfg, err := api.PinnedTLS(h.fp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", h.api, cfg)
	if err != nil {
		t.Fatalf("TLS to the API: %v", err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// httpClient talks to the forwarded API over HTTPS, accepting the host's
// certificate alone (its fingerprint, as a person would compare it).
func (h *testHost) httpClient(t *testing.T, jar http.CookieJar) *http.Client {
	t.Helper()
	cfg, err := api.PinnedTLS(h.fp)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// hostShell is the host's debug shell on its serial console, typed into
// through a pipe.
type hostShell struct {
	h  *testHost
	pw *os.File
	// answered counts the terminal questions answered.
	answered int
}

// startShellHost starts the host cfg describes with its serial console
// reading a pipe the returned shell types into; it does not wait for
// anything.
func startShellHost(t *testing.T, cfg qemu.Config, guestPorts ...int) (*testHost, *hostShell) {
	t.Helper()
	// An os.Pipe, which QEMU reads itself: with an io.Pipe, exec's copy
	// into QEMU would keep its Wait from returning.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); pr.Close() })
	cfg.Stdin = pr
	h := startHostConfig(t, cfg, guestPorts...)
	return h, &hostShell{h: h, pw: pw}
}

// run types line into the debug shell (starting it the first time) until
// done appears on the console. The shell's line editor asks the terminal
// for its colours and the cursor's place, and reads keys as the answer
// until one comes: each question is answered (a cursor at 1,1), which
// also says the colours are not known.
func (s *hostShell) run(t *testing.T, line, done string) {
	t.Helper()
	for range 30 {
		s.typeLine(line)
		select {
		case <-s.h.con.Await(done):
			return
		case <-time.After(2 * time.Second):
		}
	}
	t.Fatalf("the shell never answered %q:\n%s", line, s.h.tail())
}

// typeLine answers the terminal's questions so far and types line.
func (s *hostShell) typeLine(line string) {
	for n := s.h.con.Count("\x1b[6n"); s.answered < n; s.answered++ {
		io.WriteString(s.pw, "\x1b[1;1R")
	}
	// A carriage return: the shell's line editor reads the terminal raw,
	// where Enter is CR (hostd's prompt reads the line through the tty,
	// which turns CR into LF).
	fmt.Fprintf(s.pw, "%s\r", line)
}

// startHost starts img under QEMU, its serial console reading stdin (nil:
// nothing), without waiting for anything.
func startHost(t *testing.T, img string, memMiB int, fw *qemu.Firmware, stdin io.Reader, guestPorts ...int) *testHost {
	t.Helper()
	return startHostConfig(t, qemu.Config{Image: img, MemoryMiB: memMiB, Firmware: fw, Stdin: stdin}, guestPorts...)
}

// startHostConfig is startHost with more of QEMU's configuration (extra
// disks, a TPM): cfg's image, memory, firmware, stdin, disks and TPM
// directory are used.
func startHostConfig(t *testing.T, cfg qemu.Config, guestPorts ...int) *testHost {
	t.Helper()
	h := &testHost{fwd: map[int]string{}}
	apiPort := freePort(t)
	h.api = fmt.Sprintf("127.0.0.1:%d", apiPort)
	fwds := []qemu.Forward{{Host: apiPort, Guest: profiles.DefaultAPIPort}}
	for _, g := range guestPorts {
		p := freePort(t)
		h.fwd[g] = fmt.Sprintf("127.0.0.1:%d", p)
		fwds = append(fwds, qemu.Forward{Host: p, Guest: g})
	}
	h.con = qemu.NewConsole(400, api.ReadyLine)
	m, err := qemu.Start(context.Background(), qemu.Config{
		Image: cfg.Image, NoReboot: true, Stdin: cfg.Stdin, Stdout: h.con, Stderr: h.con, MemoryMiB: cfg.MemoryMiB, CPUs: 2, Forwards: fwds,
		Firmware: cfg.Firmware, Disks: cfg.Disks, TPMDir: cfg.TPMDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(m.Kill)
	return h
}

func (h *testHost) tail() string { return strings.Join(h.con.Tail(), "\n") }

// ctl runs `thinhost ctl` against the host with the example's token.
func (h *testHost) ctl(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCLI(t, append(h.ctlArgs(testToken), args...)...)
	if code != 0 {
		t.Fatalf("ctl %s: exit %d: %s\n%s", strings.Join(args, " "), code, stderr, h.tail())
	}
	return stdout
}

// powerOff asks for a power-off through the API and waits for a clean one.
func (h *testHost) powerOff(t *testing.T) {
	t.Helper()
	h.ctl(t, "poweroff")
	h.awaitPowerOff(t)
}

// awaitPowerOff waits for QEMU to exit after a clean power-off.
func (h *testHost) awaitPowerOff(t *testing.T) {
	t.Helper()
	select {
	case <-h.m.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("the host did not power off:\n%s", h.tail())
	}
	if !h.con.Seen("data partition unmounted") {
		t.Errorf("no clean power-off:\n%s", h.tail())
	}
}

// testCache gives t a cache of its own (THINHOST_CACHE) that shares the
// content-addressed parts — verified downloads, unpacked packages, the
// archive's signed indexes, and the initramfs programs built from this
// source — with every other test, so the host's packages are downloaded
// and hostd compiled once per run, not once per test. It returns a lock
// file path of t's own: each test resolves against the archive as it is
// today rather than trusting the committed examples/*.lock to be served
// forever.
func testCache(t *testing.T) (lock string) {
	return sharedCache(t, "sha256", "partial", "debs", "inrelease", "initramfs")
}

// testCacheColdPrograms is testCache with the initramfs programs cache
// t's own, for a test whose first build must compile them.
func testCacheColdPrograms(t *testing.T) (lock string) {
	return sharedCache(t, "sha256", "partial", "debs", "inrelease")
}

func sharedCache(t *testing.T, shared ...string) (lock string) {
	t.Helper()
	testenv.SharedCache(t, shared...)
	return filepath.Join(t.TempDir(), "packages.lock")
}
