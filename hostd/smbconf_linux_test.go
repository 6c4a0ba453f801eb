package hostd

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
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/config"
	"github.com/thinhost/thinhost/internal/smbtorture"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestSMBConfSmbtorture serves a share with the smb.conf hostd writes and
// the run directories it makes, from this machine's smbd, and holds it to
// smbtorture's connect, rw, lock and streams suites: the quick local check
// of what TestShareConformance proves on a booted host.
func TestSMBConfSmbtorture(t *testing.T) {
	testenv.NeedE2E(t) // a real smbd and smbtorture: the full suite's
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "smbd")
	smbpasswd := testenv.NeedTool(t, "smbpasswd")
	torture := testenv.NeedTool(t, "smbtorture")
	testenv.NeedFile(t, filepath.Join(SambaModulesDir, "vfs", "streams_xattr.so"), "apt-get install samba-vfs-modules")
	const name, password = "thin", "local-test-password"
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
	run, shares := filepath.Join(dir, "run"), filepath.Join(dir, "shares")
	if err := makeSambaRunDirs(run); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(shares, "files"), 0o775); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(shares, "files"), uid, uid)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	fs := &config.FileServer{User: name, Shares: []config.Share{{Name: "files", Path: "files"}}}
	rendered, err := RenderSMBConf(fs, shares, run)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(rendered, "smb ports = 445", fmt.Sprintf("smb ports = %d", port), 1)
	confPath := filepath.Join(run, "smb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// As hostd does with the profile's password: the account made with a
	// throwaway password, then given the password's NT hash, all the
	// image carries.
	pw := exec.Command(smbpasswd, "-c", confPath, "-s", "-a", name)
	pw.Stdin = strings.NewReader("throwaway-1\nthrowaway-1\n")
	if out, err := pw.CombinedOutput(); err != nil {
		t.Fatalf("smbpasswd: %v\n%s", err, out)
	}
	if out, err := exec.Command(testenv.NeedTool(t, "pdbedit"), "-s", confPath, "-u", name, "--set-nt-hash="+config.NTHash(password)).CombinedOutput(); err != nil {
		t.Fatalf("pdbedit: %v\n%s", err, out)
	}
	srv, err := smbtorture.Serve(context.Background(), confPath, port, filepath.Join(dir, "smbd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
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
