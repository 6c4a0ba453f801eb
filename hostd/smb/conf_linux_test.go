package smb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/smbtorture"
	"github.com/thinhost/thinhost/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestSMBConfSmbtorture serves a share with the smb.conf hostd writes and
// the run directories it makes, from this machine's smbd, and holds it to
// smbtorture's connect, rw, lock and streams suites: the quick local check
// of what TestShareConformance proves on a booted host.
func TestSMBConfSmbtorture(t *testing.T) {
	testenv.NeedE2E(t) // a real smbd and smbtorture: the full suite's
	torture := testenv.NeedTool(t, "smbtorture")
	const name, password = "thin", "local-test-password"
	_, port := serveRendered(t, &config.FileServer{User: name, Shares: []config.Share{{Name: "files", Path: "files"}}}, password)
	target := smbtorture.Target{Host: "127.0.0.1", Port: port, Share: "files", User: name, Password: password}
	for _, c := range []struct {
		suite string
		// mayFail are subtests a stock smbd fails too.
		mayFail   []string
		minPassed int
	}{
		{"smb2.connect", nil, 1},
		{"smb2.rw", []string{"invalid"}, 2},
		{"smb2.lock", nil, 22},
		{"smb2.streams", []string{"rename", "rename2"}, 12},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r, err := smbtorture.Run(ctx, torture, target, c.suite)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		allowed := map[string]bool{}
		for _, f := range c.mayFail {
			allowed[f] = true
		}
		for _, f := range r.Failures {
			if !allowed[f] {
				t.Errorf("%s.%s failed", c.suite, f)
			}
		}
		if r.Passed < c.minPassed {
			t.Errorf("%s: %d passed, want %d", c.suite, r.Passed, c.minPassed)
		}
	}
}

// serveRendered serves fs's shares from this machine's smbd with the
// smb.conf hostd renders (and, serving the host's network, the guest's
// include file), the run directories it makes, and an account given only
// password's NT hash, as hostd gives it; it returns the smb.conf path and
// smbd's port.
func serveRendered(t *testing.T, fs *config.FileServer, password string) (confPath string, port int) {
	t.Helper()
	confPath, port, _ = serveRenderedLink(t, fs, password, nil)
	return confPath, port
}

// serveRenderedLink is serveRendered with the guests' host-only link
// (nil: none); it also returns the shares' directory.
func serveRenderedLink(t *testing.T, fs *config.FileServer, password string, link *net.IPNet) (confPath string, port int, shares string) {
	t.Helper()
	confPath, port, shares, _ = serveRenderedWith(t, fs, password, link, "", 0)
	return confPath, port, shares
}

// serveRenderedWith is serveRenderedLink with Samba's private directory
// private ("": one of its own) and smbd on port (0: a free one); it also
// returns a stop function (the test's end stops smbd too).
func serveRenderedWith(t *testing.T, fs *config.FileServer, password string, link *net.IPNet, private string, port int) (confPath string, _ int, shares string, stop func()) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "smbd")
	testenv.NeedFile(t, filepath.Join(SambaModulesDir, "vfs", "streams_xattr.so"), "apt-get install samba-vfs-modules")
	name := fs.User
	if err := smbtorture.EnsureUser(name); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	dir, err := os.MkdirTemp("", "thinhost-smbconf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	if private == "" {
		private = filepath.Join(dir, "private")
	}
	dirs := Dirs{Run: filepath.Join(dir, "run"), Private: private}
	shares = filepath.Join(dir, "shares")
	if err := MakeDirs(dirs); err != nil {
		t.Fatal(err)
	}
	for _, s := range fs.Shares {
		if err := os.MkdirAll(filepath.Join(shares, s.Path), 0o775); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(shares, s.Path), uid, uid)
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	rendered, err := RenderSMBConf(fs, shares, dirs, link)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(rendered, "smb ports = 445", fmt.Sprintf("smb ports = %d", port), 1)
	confPath = filepath.Join(dirs.Run, "smb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if fs.HostNetwork {
		path, text := GuestConnConf(dirs.Run)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The account as hostd writes it: the password's NT hash alone.
	if err := WritePassdb(dirs.Private, name, uid, config.NTHash(password), time.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := smbtorture.Serve(context.Background(), confPath, port, filepath.Join(dir, "smbd.log"))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(srv.Stop) }
	t.Cleanup(stop)
	return confPath, port, shares, stop
}

// TestSMBConfHostNetwork serves the host's network with the smb.conf hostd
// renders for serve_on_host_network, from this machine's smbd: the guest's
// loopback address still takes SMB2.02 without encryption, as before,
// while any other address (127.0.0.2 here, as a LAN address would) refuses
// SMB2 and gives an SMB3 client a signed and encrypted session (smbstatus
// says so, from smbd's own session table).
func TestSMBConfHostNetwork(t *testing.T) {
	testenv.NeedE2E(t) // a real smbd
	smbstatus := testenv.NeedTool(t, "smbstatus")
	const name, password = "thin", "local-test-password"
	conf, port := serveRendered(t, &config.FileServer{User: name, HostNetwork: true,
		Shares: []config.Share{{Name: "files", Path: "files"}}}, password)
	// dial logs in over SMB dialect to addr; from is the client's end,
	// as smbstatus names the session.
	var from string
	dial := func(addr string, dialect uint16) (*smb2.Session, error) {
		conn, err := net.Dial("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return nil, err
		}
		from = "ipv4:" + conn.LocalAddr().String()
		d := &smb2.Dialer{Negotiator: smb2.Negotiator{SpecifiedDialect: dialect},
			Initiator: &smb2.NTLMInitiator{User: name, Password: password}}
		s, err := d.Dial(conn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if _, err := s.Mount("files"); err != nil {
			s.Logoff()
			return nil, err
		}
		return s, nil
	}
	// session reads smbd's session row for the last connection.
	session := func() string {
		out, err := exec.Command(smbstatus, "-s", conf, "-b").CombinedOutput()
		if err != nil {
			t.Fatalf("smbstatus: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, from+")") {
				return l
			}
		}
		t.Fatalf("smbstatus lists no session from %s:\n%s", from, out)
		return ""
	}
	const smb202, smb311 = 0x202, 0x311
	s, err := dial(GuestLoopback, smb202)
	if err != nil {
		t.Fatalf("the guest's address should take SMB2.02: %v", err)
	}
	if row := session(); !strings.Contains(row, "SMB2_02") || strings.Contains(row, "AES") {
		t.Errorf("the guest's session should be SMB2.02, unencrypted: %s", row)
	}
	s.Logoff()

	const lan = "127.0.0.2"
	if s, err := dial(lan, smb202); err == nil {
		s.Logoff()
		t.Errorf("an SMB2.02 session on the host's network was accepted: it cannot be encrypted")
	}
	s, err = dial(lan, smb311)
	if err != nil {
		t.Fatalf("SMB 3.1.1 on the host's network: %v", err)
	}
	defer s.Logoff()
	if row := session(); !strings.Contains(row, "SMB3_11") || !strings.Contains(row, "AES") {
		t.Errorf("the host network's session should be SMB 3.1.1, encrypted and signed: %s", row)
	} else {
		t.Logf("smbstatus: %s", row)
	}
}

// TestFilesAcrossBoots: each boot makes smbd's run and private
// directories afresh, and the Windows ACLs smbd stores with the files
// (acl_xattr) name the share user by a SID made of Samba's machine SID.
// An ACL set from Windows on a folder, inherited by a file written in
// it, must still let the user read, write, create and delete after a
// reboot: every boot gives smbd the same machine SID (MACHINE.SID in its
// private directory, as PrepareRun writes it; MachineSID of the data
// filesystem's UUID, or the one kept on it). With another SID the same
// steps are refused, which is how the host behaved before images kept
// it, until ForgetACLs (the first boot that keeps one) removes the ACLs
// stored then.
func TestFilesAcrossBoots(t *testing.T) {
	testenv.NeedE2E(t) // a real smbd
	// smbcacls speaks to port 445 alone: in a namespace of its own.
	if !testenv.InNetNS(t, nil) {
		return
	}
	smbcacls := testenv.NeedTool(t, "smbcacls")
	const name, password = "thin", "local-test-password"
	fs := &config.FileServer{User: name, Shares: []config.Share{{Name: "files", Path: "files"}}}
	dial := func() (*smb2.Session, *smb2.Share) {
		conn, err := net.Dial("tcp", "127.0.0.1:445")
		if err != nil {
			t.Fatal(err)
		}
		d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: name, Password: password}}
		s, err := d.Dial(conn)
		if err != nil {
			t.Fatal(err)
		}
		sh, err := s.Mount("files")
		if err != nil {
			t.Fatal(err)
		}
		return s, sh
	}
	// boot serves the files of the last boot (none at first) with
	// machine SID sid, writes in dir an inheritable Windows ACL and a
	// file, and ends.
	var files string
	boot := func(sid, dir string) (stop func()) {
		private := t.TempDir()
		if err := os.WriteFile(filepath.Join(private, "MACHINE.SID"), []byte(sid+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		conf, _, shares, stop := serveRenderedWith(t, fs, password, nil, private, 445)
		if files != "" {
			os.RemoveAll(filepath.Join(shares, "files"))
			if err := os.Rename(files, filepath.Join(shares, "files")); err != nil {
				t.Fatal(err)
			}
		}
		files = filepath.Join(shares, "files")
		if dir == "" {
			return stop
		}
		s, sh := dial()
		if err := sh.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s.Logoff()
		// As Explorer's Security tab or an installer sets it: the user by
		// name (a SID on the wire), inherited by what the folder holds.
		if out, err := exec.Command(smbcacls, "-s", conf, "-U", name+"%"+password, "//127.0.0.1/files", dir,
			"--set", "ACL:"+name+":ALLOWED/OI|CI/FULL").CombinedOutput(); err != nil {
			t.Fatalf("smbcacls: %v\n%s", err, out)
		}
		s, sh = dial()
		defer s.Logoff()
		if err := sh.WriteFile(dir+`\a.txt`, []byte("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Getxattr(filepath.Join(files, dir, "a.txt"), "security.NTACL", nil); err != nil {
			t.Fatalf("no Windows ACL stored with the file: %v", err)
		}
		return stop
	}
	// use tries what a user does with the file a boot left in dir: read
	// and rewrite it, make a file beside it and delete that.
	use := func(dir string) []error {
		s, sh := dial()
		defer s.Logoff()
		var errs []error
		if b, err := sh.ReadFile(dir + `\a.txt`); err != nil || len(b) == 0 {
			errs = append(errs, fmt.Errorf("read: %q %v", b, err))
		}
		if err := sh.WriteFile(dir+`\a.txt`, []byte("two"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write: %w", err))
		}
		if err := sh.WriteFile(dir+`\b.txt`, []byte("new"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("create: %w", err))
		}
		if err := sh.Remove(dir + `\b.txt`); err != nil {
			errs = append(errs, fmt.Errorf("delete: %w", err))
		}
		return errs
	}
	kept := MachineSID([16]byte{0x5e, 0x1f})
	boot(kept, "kept")()
	boot(kept, "lost")()
	// The next boot with the same machine SID: the files are the user's,
	// both the last boot's and the one before's.
	stop := boot(kept, "")
	if errs := use("kept"); len(errs) > 0 {
		t.Errorf("after two reboots, with the same machine SID: %v", errs)
	}
	if errs := use("lost"); len(errs) > 0 {
		t.Errorf("after a reboot, with the same machine SID: %v", errs)
	}
	stop()
	// Another SID, as every boot had before: refused. (The check that
	// the test can fail.)
	defer boot(MachineSID([16]byte{0x0e, 0x1f}), "")()
	if errs := use("lost"); len(errs) == 0 {
		t.Error("with a fresh private directory the last boot's files were still the user's: this test shows nothing")
	}
	// What the first boot that keeps the directory does (Prepare): the
	// ACLs stored before are forgotten, and the files are the user's.
	if n, err := ForgetACLs(filepath.Dir(files)); err != nil || n == 0 {
		t.Fatalf("ForgetACLs = %d, %v", n, err)
	}
	if errs := use("lost"); len(errs) > 0 {
		t.Errorf("after the stored ACLs were forgotten: %v", errs)
	}
}
