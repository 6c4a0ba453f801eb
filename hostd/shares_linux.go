package hostd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/guestdrive"
	"github.com/thinhost/thinhost/hostd/smb"
	"github.com/thinhost/thinhost/internal/procnet"
)

// setupShares prepares and starts the file server: the share user's
// account, the share folders on the data partition, smb.conf, the user's
// password in Samba's database, and smbd under the supervisor, whose
// readiness it does not wait for (sharesUp).
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
	if err := d.prepareShares(); err != nil {
		d.record("shares not served: %v", err)
		return
	}
	if err := d.sup.Start(context.WithoutCancel(ctx), smb.Service()); err != nil {
		d.record("start smbd: %v", err)
		return
	}
	// Ready means the shares answer: smbd comes up (bounded) beside the
	// services, the guests' setup and the API; Run waits for sharesUp
	// before the guests start and before the ready line.
	d.sharesUp = make(chan struct{})
	go func() {
		defer close(d.sharesUp)
		if err := smb.WaitListening(ctx, 20*time.Second); err != nil {
			if ctx.Err() == nil {
				d.record("%v", err)
			}
			return
		}
		log.Info("smbd listening", "addresses", strings.Join(procnet.Listeners(445), " "))
	}()
}

// prepareShares makes the share user's account, finds its password and
// prepares Samba (smb.Prepare); it runs nothing.
func (d *Daemon) prepareShares() error {
	fsc := d.opts.Config.FileServer
	if err := addAccount(fsc.User); err != nil {
		return fmt.Errorf("create the share user %s: %w", fsc.User, err)
	}
	pw, where, err := smb.Password(fsc, smb.PasswordFile)
	if err != nil {
		return err
	}
	d.sharePW, d.sharePWFrom = pw, where
	if err := smb.Prepare(fsc, pw, d.linkAddr()); err != nil {
		return err
	}
	d.opts.Log.Info("shares ready", "shares", len(fsc.Shares), "user", fsc.User, "password", where, "host_network", fsc.HostNetwork)
	return nil
}

// addAccount gives the share user an account in /etc/passwd and
// /etc/group (the initramfs's own, in RAM), as smbd needs one.
func addAccount(user string) error {
	// smbd also needs its guest account to exist, though guests are
	// refused (map to guest = Never).
	return ensureAccounts(
		[]string{"root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
			fmt.Sprintf("%s:x:%d:%d:thinhost share user:/nonexistent:/bin/false", user, smb.ShareUID, smb.ShareGID)},
		[]string{"root:x:0:", "nogroup:x:65534:", fmt.Sprintf("%s:x:%d:", user, smb.ShareGID)})
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
		HostNetwork: fsc.HostNetwork, Listen: procnet.Listeners(445)}
	for _, s := range fsc.Shares {
		dir := filepath.Join(smb.SharesDir, s.Path)
		used, complete := d.usage.Get(dir)
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
