package hostd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/sysimage"
)

// shareUID and shareGID own the shares' files: the share user's account.
const shareUID, shareGID = 1000, 1000

// sharePasswordFile keeps the generated share password.
var sharePasswordFile = filepath.Join(storage.DataDir, "state", "share-password")

// setupShares prepares and starts the file server: the share user's
// account, the share folders on the data partition, smb.conf, the user's
// password in Samba's database, and smbd under the supervisor.
func (d *Daemon) setupShares(ctx context.Context) {
	fsc := d.opts.Config.FileServer
	log := d.opts.Log
	if fsc == nil {
		return
	}
	if d.data == nil || !d.data.Mounted {
		d.record("shares not served: they live on the data partition, which is not mounted")
		return
	}
	if err := d.prepareShares(ctx); err != nil {
		d.record("shares not served: %v", err)
		return
	}
	path, args := sysimage.Program("/usr/sbin/smbd", "--foreground", "--no-process-group", "--debug-stdout", "--configfile="+SMBConf)
	if err := d.sup.Start(context.WithoutCancel(ctx), supervise.Service{
		Name: "smbd", Path: path, Args: args, Env: sysimage.Env(),
		// smbd ends its client connections on SIGTERM.
		StopTimeout: 10 * time.Second,
	}); err != nil {
		d.record("start smbd: %v", err)
		return
	}
	// Ready means the shares answer: wait (bounded) until smbd listens.
	deadline := time.Now().Add(20 * time.Second)
	for len(listeners(445)) == 0 {
		if time.Now().After(deadline) {
			d.record("smbd is not listening on port 445 after 20s")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	log.Info("smbd listening", "addresses", strings.Join(listeners(445), " "))
}

func (d *Daemon) prepareShares(ctx context.Context) error {
	fsc := d.opts.Config.FileServer
	if err := addAccount(fsc.User); err != nil {
		return fmt.Errorf("create the share user %s: %w", fsc.User, err)
	}
	pw, where, err := d.sharePassword()
	if err != nil {
		return err
	}
	d.sharePW, d.sharePWFrom = pw, where
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
		if err := os.Lchown(dir, shareUID, shareGID); err != nil {
			return fmt.Errorf("chown share %s: %w", s.Name, err)
		}
	}
	if err := linkSambaModules(); err != nil {
		return err
	}
	if err := makeSambaRunDirs(SambaDir); err != nil {
		return err
	}
	conf, err := RenderSMBConf(fsc, SharesDir, SambaDir, d.linkAddr())
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
	// Samba's password database lives in /run: it is made afresh from the
	// password each boot, so a changed profile password takes effect.
	// With only the profile's NT hash, the account is made with a random
	// password that is then replaced by the hash.
	if pw == "" {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		pw = hex.EncodeToString(raw)
	}
	cmd := sysimage.Command(ctx, "/usr/bin/smbpasswd", "-c", SMBConf, "-s", "-a", fsc.User)
	cmd.Env = sysimage.Env()
	cmd.Stdin = strings.NewReader(pw + "\n" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("set the share password: smbpasswd: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if h := fsc.PasswordNTHash; h != "" {
		if len(h) != 32 || strings.Trim(strings.ToUpper(h), "0123456789ABCDEF") != "" {
			return fmt.Errorf("set the share password: the configuration's password_nt_hash is not an NT hash")
		}
		out, err := sysimage.Command(ctx, "/usr/bin/pdbedit", "-s", SMBConf, "-u", fsc.User, "--set-nt-hash="+h).CombinedOutput()
		if err != nil {
			return fmt.Errorf("set the share password: pdbedit: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	d.opts.Log.Info("shares ready", "shares", len(fsc.Shares), "user", fsc.User, "password", where, "host_network", fsc.HostNetwork)
	return nil
}

// makeSambaRunDirs makes smbd's run directories as Debian's package does:
// the password database's private directory for root alone, the rest
// readable by all. smbd's processes check each other's liveness through
// lock files under the lock directory while impersonating the share user;
// with that directory closed to the user, every other process's open files
// read as stale, their share-mode entries are dropped, and closes fail
// with NT_STATUS_INVALID_PARAMETER (smbtorture's rw1 and lock.overlap).
func makeSambaRunDirs(dir string) error {
	for _, sub := range append([]string{""}, SambaRunDirs...) {
		p, mode := filepath.Join(dir, sub), os.FileMode(0o755)
		if sub == "private" {
			mode = 0o700
		}
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

// sharePassword is the profile's password, or the one kept on the data
// partition (generated on first boot).
func (d *Daemon) sharePassword() (pw, where string, err error) {
	if p := d.opts.Config.FileServer.Password; p != "" {
		return p, "the profile's password", nil
	}
	if d.opts.Config.FileServer.PasswordNTHash != "" {
		return "", "the profile's password, which the host keeps only as its NT hash", nil
	}
	if b, err := os.ReadFile(sharePasswordFile); err == nil && len(strings.TrimSpace(string(b))) >= 8 {
		return strings.TrimSpace(string(b)), sharePasswordFile, nil
	}
	raw := make([]byte, 9)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	pw = hex.EncodeToString(raw)
	if err := os.WriteFile(sharePasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("store the share password in %s: %w", sharePasswordFile, err)
	}
	unix.Sync()
	return pw, sharePasswordFile + " (generated)", nil
}

// addAccount gives the share user an account in /etc/passwd and
// /etc/group (the initramfs's own, in RAM), as smbd needs one.
func addAccount(user string) error {
	// smbd also needs its guest account to exist, though guests are
	// refused (map to guest = Never).
	return ensureAccounts(
		[]string{"root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
			fmt.Sprintf("%s:x:%d:%d:thinhost share user:/nonexistent:/bin/false", user, shareUID, shareGID)},
		[]string{"root:x:0:", "nogroup:x:65534:", fmt.Sprintf("%s:x:%d:", user, shareGID)})
}

// ensureAccounts adds the passwd and group lines whose names are missing
// from /etc/passwd and /etc/group (the initramfs's own, in RAM).
func ensureAccounts(passwd, group []string) error {
	if err := os.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		path  string
		lines []string
	}{{"/etc/passwd", passwd}, {"/etc/group", group}} {
		b, _ := os.ReadFile(f.path)
		text := string(b)
		for _, l := range f.lines {
			name := l[:strings.IndexByte(l, ':')+1]
			if !hasLinePrefix(text, name) {
				if text != "" && !strings.HasSuffix(text, "\n") {
					text += "\n"
				}
				text += l + "\n"
			}
		}
		if err := os.WriteFile(f.path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func hasLinePrefix(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// sharesStatus is GET /v1/shares.
func (d *Daemon) sharesStatus() *api.Shares {
	fsc := d.opts.Config.FileServer
	if fsc == nil {
		return nil
	}
	out := &api.Shares{User: fsc.User, Password: d.sharePW, PasswordFrom: d.sharePWFrom,
		HostNetwork: fsc.HostNetwork, Listen: listeners(445)}
	for _, s := range fsc.Shares {
		dir := filepath.Join(SharesDir, s.Path)
		used, complete := d.usage.get(dir)
		st := api.Share{Name: s.Name, Path: dir, ReadOnly: s.ReadOnly, Drive: s.Drive,
			UsedBytes: used, UsageComplete: complete, NetUse: guestdrive.NetUse(fsc, s, d.guestHost())}
		var sfs unix.Statfs_t
		if unix.Statfs(dir, &sfs) == nil {
			st.FreeBytes = int64(sfs.Bavail) * sfs.Bsize
		}
		out.Shares = append(out.Shares, st)
	}
	return out
}

// usageCache keeps each share's usage: a walk of a share with many files
// takes seconds, and the host's page and `ctl shares` ask often. A reading
// younger than usageFresh is used as it is; an older one is used while a
// walk in the background replaces it; the first one is walked while the
// caller waits (at most duBudget).
type usageCache struct {
	mu      sync.Mutex
	entries map[string]*usageEntry
}

type usageEntry struct {
	used     int64
	complete bool
	at       time.Time
	walking  bool
}

const (
	usageFresh = 30 * time.Second
	duBudget   = 2 * time.Second
)

func (c *usageCache) get(dir string) (int64, bool) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*usageEntry{}
	}
	e := c.entries[dir]
	if e == nil {
		c.mu.Unlock()
		used, complete := du(dir, duBudget)
		c.mu.Lock()
		c.entries[dir] = &usageEntry{used: used, complete: complete, at: time.Now()}
		c.mu.Unlock()
		return used, complete
	}
	used, complete := e.used, e.complete
	if time.Since(e.at) > usageFresh && !e.walking {
		e.walking = true
		go func() {
			u, ok := du(dir, duBudget)
			c.mu.Lock()
			e.used, e.complete, e.at, e.walking = u, ok, time.Now(), false
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()
	return used, complete
}

// du sums the sizes of the files under dir, giving up after budget.
func du(dir string, budget time.Duration) (int64, bool) {
	deadline := time.Now().Add(budget)
	var total int64
	complete := true
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			complete = false
			return filepath.SkipAll
		}
		if e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total, complete
}

// listeners reads the kernel's socket tables for TCP sockets listening on
// port: what is really reachable, whatever smb.conf says.
func listeners(port int) []string {
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		out = append(out, ParseListeners(bufio.NewScanner(fh), port)...)
		fh.Close()
	}
	return out
}

// ParseListeners returns "ADDRESS:PORT" for each socket in LISTEN state on
// port, from the lines of /proc/net/tcp or /proc/net/tcp6.
func ParseListeners(sc *bufio.Scanner, port int) []string {
	var out []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		addr, p, ok := strings.Cut(f[1], ":")
		n, err := strconv.ParseUint(p, 16, 16)
		if !ok || err != nil || int(n) != port {
			continue
		}
		out = append(out, procAddr(addr)+":"+strconv.Itoa(port))
	}
	return out
}

// procAddr decodes /proc/net/tcp's hex address: IPv4 as one little-endian
// word, IPv6 as four.
func procAddr(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	if len(b) == 16 {
		return "[" + net.IP(b).String() + "]"
	}
	return net.IP(b).String()
}
