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
	"github.com/thinhost/thinhost/internal/procnet"
	"golang.org/x/sys/unix"
)

// ShareUID and ShareGID own the shares' files: the share user's account.
const ShareUID, ShareGID = 1000, 1000

// PasswordFile keeps the generated share password on the data partition.
var PasswordFile = filepath.Join(layout.DataDir, "state", "share-password")

// Prepare readies the file server for smbd: the share folders on the data
// partition (SharesDir), Samba's modules, its run directories and its
// private directory (kept: PrivateDir), smb.conf (link: the guests'
// host-only link, nil: none), and the share user's password pw (empty:
// fsc's NT hash alone) in Samba's database, written afresh each boot. The
// share user's account must exist.
func Prepare(fsc *config.FileServer, pw string, link *net.IPNet) error {
	for _, s := range fsc.Shares {
		dir := filepath.Join(SharesDir, s.Path)
		if err := os.MkdirAll(dir, 0o775); err != nil {
			return fmt.Errorf("create share %s: %w", s.Name, err)
		}
		// A share is served from where it is, never through a symlink
		// that would carry it (and wide links = no with it) elsewhere.
		if real, err := filepath.EvalSymlinks(dir); err != nil || real != dir {
			return fmt.Errorf("share %s: %s resolves to %q, outside the data partition's shares folder: remove the symlink", s.Name, dir, real)
		}
		// The share's own folder belongs to the share user; what is in it
		// is left as it is.
		if err := os.Lchown(dir, ShareUID, ShareGID); err != nil {
			return fmt.Errorf("chown share %s: %w", s.Name, err)
		}
	}
	if err := linkSambaModules(); err != nil {
		return err
	}
	if _, err := os.Stat(PrivateDir); errors.Is(err, fs.ErrNotExist) {
		// The first boot with Samba's secrets kept: every Windows ACL
		// stored so far names a machine SID that is gone. Before the
		// directory is made, so that a boot that failed here tries again.
		n, err := ForgetACLs(SharesDir)
		if err != nil {
			return err
		}
		if n > 0 {
			slog.Info("shares: removed Windows ACLs an earlier image stored, which named a server SID made afresh each boot and refused the files to their user", "files", n)
		}
	}
	if err := MakeDirs(HostDirs); err != nil {
		return err
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
	// Samba's password database is written afresh from the password (or
	// the profile's NT hash) each boot, so a changed profile password
	// takes effect. Written here, in smbpasswd's format: no smbpasswd or
	// pdbedit to run (1.7 s of the host's boot under TCG).
	hash := fsc.PasswordNTHash
	if hash == "" {
		hash = config.NTHash(pw)
	}
	if err := WritePassdb(PrivateDir, fsc.User, ShareUID, hash, time.Now()); err != nil {
		return fmt.Errorf("set the share password: %w", err)
	}
	return nil
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
// for at most timeout.
func WaitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(procnet.Listeners(445)) == 0 {
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

// Warm brings into memory what smbd's start reads from the system image
// (its program and its 138 libraries, linked at start), by running `smbd
// -V`, so that smbd, started once the data partition is mounted, finds
// them there: under TCG a cold start took 0.5-0.6 s to link, a warm one
// 0.25-0.3 s. It runs at the boot's priority: at nice 10 it ended after
// smbd had started, and four boots each way were 0.1 s slower to ready.
// It returns when that run ended.
func Warm(ctx context.Context) error {
	if err := sysimage.Command(ctx, "/usr/sbin/smbd", "-V").Run(); err != nil {
		return fmt.Errorf("warm smbd: %w", err)
	}
	return nil
}
