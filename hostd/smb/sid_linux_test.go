package smb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestKeepSID: the SID kept on the data partition wins over smbd's; an
// earlier image's secrets.tdb (made here by Samba's own net, as smbd
// made it) gives its SID; with neither, smbd's is kept, and only when
// no image kept one before are the stored Windows ACLs forgotten.
func TestKeepSID(t *testing.T) {
	const smbds = "S-1-5-21-1-2-3"
	read := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "machine-sid"))
		return strings.TrimSpace(string(b))
	}
	t.Run("kept", func(t *testing.T) {
		state := t.TempDir()
		os.WriteFile(filepath.Join(state, "machine-sid"), []byte("S-1-5-21-4-5-6\n"), 0o644)
		if sid, err := keepSID(state, t.TempDir(), smbds); err != nil || sid != "S-1-5-21-4-5-6" {
			t.Errorf("keepSID = %q, %v", sid, err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		state := t.TempDir()
		os.WriteFile(filepath.Join(state, "machine-sid"), []byte("S-1-5-21-\n"), 0o644)
		if sid, err := keepSID(state, t.TempDir(), smbds); err != nil || sid != smbds || read(state) != smbds {
			t.Errorf("keepSID = %q, %v; kept %q", sid, err, read(state))
		}
	})
	t.Run("secrets", func(t *testing.T) {
		net := testenv.NeedTool(t, "net")
		state := t.TempDir()
		run := t.TempDir()
		conf := filepath.Join(run, "smb.conf")
		text := "[global]\n  netbios name = " + NetbiosName + "\n  private dir = " + state + "\n"
		for _, d := range []string{"lock", "state", "cache", "pid"} {
			os.MkdirAll(filepath.Join(run, d), 0o755)
			text += "  " + d + " directory = " + filepath.Join(run, d) + "\n"
		}
		os.WriteFile(conf, []byte(text), 0o644)
		os.WriteFile(filepath.Join(state, "MACHINE.SID"), []byte("S-1-5-21-111-222-333\n"), 0o600)
		if out, err := exec.Command(net, "-s", conf, "getlocalsid").CombinedOutput(); err != nil {
			t.Fatalf("net getlocalsid: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(state, "secrets.tdb")); err != nil {
			t.Fatal(err)
		}
		if sid, err := keepSID(state, t.TempDir(), smbds); err != nil || sid != "S-1-5-21-111-222-333" || read(state) != sid {
			t.Errorf("keepSID = %q, %v; kept %q", sid, err, read(state))
		}
	})
	t.Run("secrets unread", func(t *testing.T) {
		// Secrets whose SID cannot be read: smbd's serves, and nothing is
		// kept, so that a later image that reads them still can.
		state := t.TempDir()
		os.WriteFile(filepath.Join(state, "secrets.tdb"), []byte("not a tdb"), 0o600)
		if sid, err := keepSID(state, t.TempDir(), smbds); err != nil || sid != smbds || read(state) != "" {
			t.Errorf("keepSID = %q, %v; kept %q", sid, err, read(state))
		}
	})
	t.Run("first", func(t *testing.T) {
		shares := t.TempDir()
		f := filepath.Join(shares, "a.txt")
		os.WriteFile(f, nil, 0o644)
		if err := unix.Setxattr(f, "security.NTACL", []byte("acl"), 0); err != nil {
			t.Skipf("no security xattrs here: %v", err)
		}
		// A state folder without secrets: an image kept a SID before,
		// and the ACLs stay.
		state := t.TempDir()
		if sid, err := keepSID(state, shares, smbds); err != nil || sid != smbds || read(state) != smbds {
			t.Errorf("keepSID = %q, %v; kept %q", sid, err, read(state))
		}
		if _, err := unix.Getxattr(f, "security.NTACL", nil); err != nil {
			t.Errorf("the ACL went: %v", err)
		}
		// No state folder at all: the ACLs were stored under a SID made
		// afresh each boot, and go.
		state = filepath.Join(t.TempDir(), "samba")
		if sid, err := keepSID(state, shares, smbds); err != nil || sid != smbds || read(state) != smbds {
			t.Errorf("keepSID = %q, %v; kept %q", sid, err, read(state))
		}
		if _, err := unix.Getxattr(f, "security.NTACL", nil); err == nil {
			t.Error("the ACL stored under a SID made afresh each boot is still there")
		}
	})
}
