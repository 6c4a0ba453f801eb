package smb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/fsutil"
	"golang.org/x/sys/unix"
)

// ShareUID and ShareGID own the shares' files: the share user's account.
const ShareUID, ShareGID = 1000, 1000

// PasswordFile keeps the generated share password on the data partition.
var PasswordFile = filepath.Join(layout.DataDir, "state", "share-password")

// SIDFile keeps, on the data partition, the machine SID the shares'
// Windows ACLs name (MachineSID): smbd starts with the SID made of the
// filesystem's UUID before the partition is mounted, and is started
// again with this one if they differ (a filesystem whose files came from
// another, an image before that kept Samba's secrets in StateDir).
var SIDFile = filepath.Join(StateDir, "machine-sid")

// PrepareRun readies smbd to start with machine SID sid, before the data
// partition is mounted: Samba's modules, its run and private directories
// (in memory, made afresh for each start: the SID goes in as
// MACHINE.SID, which smbd takes into its secrets at start; nothing an
// earlier start cached under another SID stays), and smb.conf (link: the
// guests' host-only link, nil: none). The password database is not
// written: nobody logs on until WritePassword, once PrepareShares has
// settled the SID the files' ACLs name. The share user's account must
// exist.
func PrepareRun(fsc *config.FileServer, link *net.IPNet, sid string) error {
	if _, err := ParseMachineSID(sid); err != nil {
		return fmt.Errorf("prepare smbd: %w", err)
	}
	if err := linkSambaModules(); err != nil {
		return err
	}
	for _, d := range append([]string{HostDirs.Private}, SambaRunDirs...) {
		if err := os.RemoveAll(filepath.Join(HostDirs.Run, filepath.Base(d))); err != nil {
			return fmt.Errorf("prepare smbd: %w", err)
		}
	}
	if err := MakeDirs(HostDirs); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(PrivateDir, "MACHINE.SID"), []byte(sid+"\n"), 0o600); err != nil {
		return fmt.Errorf("prepare smbd: %w", err)
	}
	conf, err := RenderSMBConf(fsc, SharesDir, HostDirs, link)
	if err != nil {
		return err
	}
	if err := os.WriteFile(SMBConf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", SMBConf, err)
	}
	if fsc.HostNetwork {
		path, text := GuestConnConf(SambaDir)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// PrepareShares readies the shares once the data partition is mounted:
// the share folders (SharesDir) and the machine SID the files' stored
// ACLs name, which it returns: the one in SIDFile; else the one an
// earlier image kept in Samba's secrets in StateDir; else sid, smbd's (a
// new filesystem, or files from images that made a new SID each boot,
// whose stored ACLs it removes). It keeps the SID it returns in SIDFile.
func PrepareShares(fsc *config.FileServer, sid string) (string, error) {
	for _, s := range fsc.Shares {
		dir := filepath.Join(SharesDir, s.Path)
		if err := os.MkdirAll(dir, 0o775); err != nil {
			return "", fmt.Errorf("create share %s: %w", s.Name, err)
		}
		// A share is served from where it is, never through a symlink
		// that would carry it (and wide links = no with it) elsewhere.
		if real, err := filepath.EvalSymlinks(dir); err != nil || real != dir {
			return "", fmt.Errorf("share %s: %s resolves to %q, outside the data partition's shares folder: remove the symlink", s.Name, dir, real)
		}
		// The share's own folder belongs to the share user; what is in it
		// is left as it is.
		if err := os.Lchown(dir, ShareUID, ShareGID); err != nil {
			return "", fmt.Errorf("chown share %s: %w", s.Name, err)
		}
	}
	return keepSID(StateDir, SharesDir, sid)
}

// WritePassword writes the share user's account with password pw (empty:
// fsc's NT hash alone) as Samba's password database, afresh each boot, so
// a changed profile password takes effect: in smbpasswd's format, no
// smbpasswd or pdbedit to run (1.7 s of the host's boot under TCG). smbd
// reads it at each logon, so logons begin here.
func WritePassword(fsc *config.FileServer, pw string) error {
	hash := fsc.PasswordNTHash
	if hash == "" {
		hash = config.NTHash(pw)
	}
	if err := WritePassdb(PrivateDir, fsc.User, ShareUID, hash, time.Now()); err != nil {
		return fmt.Errorf("set the share password: %w", err)
	}
	return nil
}

// keepSID returns the machine SID kept in stateDir (SIDFile's name
// there), as PrepareShares says, keeping sid there when none was.
func keepSID(stateDir, sharesDir, sid string) (string, error) {
	file := filepath.Join(stateDir, filepath.Base(SIDFile))
	b, err := os.ReadFile(file)
	if err == nil {
		kept, perr := ParseMachineSID(string(b))
		if perr == nil {
			return kept, nil
		}
		// Not written by hostd (it writes it whole, then renames it):
		// the secrets below, or smbd's SID, and a new file.
		slog.Warn("shares: the kept machine SID is unreadable; the files' stored Windows ACLs may name another", "file", file, "err", perr)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the shares' machine SID: %w", err)
	}
	secrets := filepath.Join(stateDir, "secrets.tdb")
	b, err = os.ReadFile(secrets)
	switch {
	case err == nil:
		// Kept by the images that kept Samba's private directory here.
		old, err := SecretsSID(b, NetbiosName)
		if err != nil {
			// Not kept, so that a later image that reads it can: the
			// files' stored ACLs may name the SID in there.
			slog.Warn("shares: no machine SID read from the secrets an earlier image kept; smbd's serves this boot", "file", secrets, "err", err)
			return sid, nil
		}
		slog.Info("shares: the machine SID an earlier image kept in Samba's secrets is the shares' from now on", "sid", old, "file", file)
		sid = old
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read the machine SID an earlier image kept: %w", err)
	}
	if _, err := os.Stat(stateDir); errors.Is(err, fs.ErrNotExist) {
		// The first boot to keep a machine SID: every Windows ACL stored
		// before names one made afresh each boot, gone. Before the SID
		// is kept, so that a boot that failed here tries again.
		n, err := ForgetACLs(sharesDir)
		if err != nil {
			return "", err
		}
		if n > 0 {
			slog.Info("shares: removed Windows ACLs an earlier image stored, which named a server SID made afresh each boot and refused the files to their user", "files", n)
		}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("keep the shares' machine SID: %w", err)
	}
	if err := fsutil.WriteFile(file, strings.NewReader(sid+"\n"), 0o644, nil); err != nil {
		return "", fmt.Errorf("keep the shares' machine SID: %w", err)
	}
	return sid, nil
}

// Service is smbd as the supervisor runs it, from the system image with
// the smb.conf Prepare wrote.
func Service() supervise.Service {
	path, args := sysimage.Program("/usr/sbin/smbd", "--foreground", "--no-process-group", "--debug-stdout", "--configfile="+SMBConf)
	return supervise.Service{
		Name: "smbd", Path: path, Args: args, Env: sysimage.Env(),
		// smbd ends its client connections on SIGTERM.
		StopTimeout: 10 * time.Second,
	}
}

// WaitListening waits until smbd listens on port 445 (the shares answer),
// for at most timeout. It tries to connect on loopback, which every
// smb.conf hostd writes serves: a refused connection costs the kernel
// little, where reading /proc/net/tcp every 50 ms took 0.24 s of CPU in a
// boot under TCG. The one connection that succeeds is closed at once.
func WaitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	answers := func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(GuestLoopback, "445"), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	for !answers() {
		if time.Now().After(deadline) {
			return fmt.Errorf("smbd is not listening on port 445 after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// MakeDirs makes smbd's directories as Debian's package does: the
// private directory (secrets, the password database) for root alone, the
// run directories readable by all. smbd's processes check each other's liveness through
// lock files under the lock directory while impersonating the share user;
// with that directory closed to the user, every other process's open files
// read as stale, their share-mode entries are dropped, and closes fail
// with NT_STATUS_INVALID_PARAMETER (smbtorture's rw1 and lock.overlap).
func MakeDirs(dirs Dirs) error {
	type dir struct {
		path string
		mode os.FileMode
	}
	all := []dir{{dirs.Run, 0o755}, {dirs.Private, 0o700}}
	for _, sub := range SambaRunDirs {
		all = append(all, dir{filepath.Join(dirs.Run, sub), 0o755})
	}
	for _, d := range all {
		p, mode := d.path, d.mode
		if err := os.MkdirAll(p, mode); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		// MkdirAll keeps an existing directory's mode and applies the
		// umask: set it.
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}

// linkSambaModules points smbd's compiled-in module directory at the
// system image's, where the VFS modules smb.conf names (acl_xattr,
// streams_xattr) live; without them every share answers
// NT_STATUS_BAD_NETWORK_NAME.
func linkSambaModules() error {
	target := filepath.Join(sysimage.Dir, SambaModulesDir)
	if _, err := os.Stat(filepath.Join(target, "vfs", "streams_xattr.so")); err != nil {
		return fmt.Errorf("find Samba's VFS modules in the system image: %w (rebuild the image with this thinhost)", err)
	}
	if cur, err := os.Readlink(SambaModulesDir); err == nil && cur == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(SambaModulesDir), 0o755); err != nil {
		return fmt.Errorf("link Samba's modules: %w", err)
	}
	if err := os.Symlink(target, SambaModulesDir); err != nil {
		return fmt.Errorf("link Samba's modules %s -> %s: %w", SambaModulesDir, target, err)
	}
	return nil
}

// Password is the share user's password: fsc's, or the one kept in file
// on the data partition (generated on first boot). where says which.
// With only the profile's NT hash, pw is empty.
func Password(fsc *config.FileServer, file string) (pw, where string, err error) {
	if p := fsc.Password; p != "" {
		return p, "the profile's password", nil
	}
	if fsc.PasswordNTHash != "" {
		return "", "the profile's password, which the host keeps only as its NT hash", nil
	}
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) >= 8 {
		return strings.TrimSpace(string(b)), file, nil
	}
	raw := make([]byte, 9)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	pw = hex.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("store the share password in %s: %w", file, err)
	}
	unix.Sync()
	return pw, file + " (generated)", nil
}

// ForgetACLs removes the Windows ACLs smbd stored with the files and
// folders under dir (the security.NTACL attribute), so that smbd derives
// them from the files' owners and modes again; it says how many it
// removed. hostd runs it once, on the first boot that keeps Samba's
// secrets (PrivateDir): images before made a new server SID each boot, so
// an ACL stored then names the user by a SID no boot will have again,
// and its file was refused to its own user. It follows no symlink.
func ForgetACLs(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		switch err := unix.Lremovexattr(p, "security.NTACL"); {
		case err == nil:
			n++
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		default:
			return fmt.Errorf("remove the Windows ACL of %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("forget the shares' Windows ACLs: %w", err)
	}
	return n, nil
}
