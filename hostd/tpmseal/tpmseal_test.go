package tpmseal

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/thinhost/thinhost/internal/testenv"
)

// swtpm starts a software TPM 2.0 (swtpm, as QEMU's guests get) with its
// state in dir and returns a connection to its command channel.
func swtpm(t *testing.T, dir string) transport.TPMCloser {
	t.Helper()
	bin := testenv.NeedTool(t, "swtpm")
	sock := filepath.Join(dir, "cmd.sock")
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"),
		"--flags", "not-need-init,startup-clear")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect to swtpm: %v", err)
	}
	tpm := transport.FromReadWriteCloser(conn)
	t.Cleanup(func() { tpm.Close() })
	return tpm
}

// TestSealUnseal against swtpm: the secret comes back while PCR 7 holds
// its value, not after PCR 7 changes (what the firmware does when Secure
// Boot's state or keys change), and not from another TPM.
func TestSealUnseal(t *testing.T) {
	tpm := swtpm(t, t.TempDir())
	secret := []byte("0123456789abcdef0123456789abcdef")
	s, err := Seal(tpm, secret, []uint{7})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(tpm, s)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unseal: %q, %v", got, err)
	}
	// Another PCR changing does not matter.
	extend(t, tpm, 8)
	if got, err := Unseal(tpm, s); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unseal after PCR 8 changed: %q, %v", got, err)
	}
	other := swtpm(t, t.TempDir())
	if _, err := Unseal(other, s); !errors.Is(err, ErrPolicy) {
		t.Errorf("another TPM unsealed it, or failed otherwise: %v", err)
	}
	extend(t, tpm, 7)
	if got, err := Unseal(tpm, s); !errors.Is(err, ErrPolicy) {
		t.Errorf("unseal after PCR 7 changed: %q, %v; want ErrPolicy", got, err)
	}
	// Sealed again to the new state, it comes back.
	s2, err := Seal(tpm, secret, []uint{7})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unseal(tpm, s2); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("unseal after sealing to the new state: %q, %v", got, err)
	}
	if _, err := Seal(tpm, nil, []uint{7}); err == nil {
		t.Error("an empty secret should be refused")
	}
}

func extend(t *testing.T, tpm transport.TPM, pcr uint) {
	t.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}}},
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("extend PCR %d: %v", pcr, err)
	}
}

// wire records what crosses the bus to and from a TPM.
type wire struct {
	transport.TPM
	seen bytes.Buffer
}

func (w *wire) Send(cmd []byte) ([]byte, error) {
	w.seen.Write(cmd)
	rsp, err := w.TPM.Send(cmd)
	w.seen.Write(rsp)
	return rsp, err
}

// TestSealedOnTheWire: the secret never crosses the bus in clear, going
// in (Create) or coming out (Unseal), as a probe on a laptop's TPM bus
// would read it.
func TestSealedOnTheWire(t *testing.T) {
	w := &wire{TPM: swtpm(t, t.TempDir())}
	secret := []byte("a secret a bus probe must not read")
	s, err := Seal(w, secret, []uint{7})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(w, s)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unseal: %q, %v", got, err)
	}
	if bytes.Contains(w.seen.Bytes(), secret) {
		t.Error("the secret crossed the bus in clear")
	}
}
