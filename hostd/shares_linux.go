package hostd

import (
	"context"
	"fmt"
	"net"
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

// startSharesEarly starts smbd as soon as the data filesystem's UUID
// (id) is known, before the partition is checked and mounted, with the
// machine SID made of it: under TCG smbd took 0.8-1.3 s from its start
// to listening (linking Samba's 138 libraries), which now goes on beside
// e2fsck, ext4's module and the mount. Its shares' folders are not there
// until setupShares. With the shares served to the guests' link alone,
// smbd binds the link's address, so it waits for the link (linkUp).
func (d *Daemon) startSharesEarly(ctx context.Context, id [16]byte, linkUp <-chan struct{}) {
	d.dataID = id
	fsc := d.opts.Config.FileServer
	if fsc == nil || !d.systemMounted || d.smbEarly != nil {
		return
	}
	done := make(chan struct{})
	d.smbEarly = done
	go func() {
		defer close(done)
		if !fsc.HostNetwork {
			<-linkUp
		}
		if err := d.startSMB(ctx, smb.MachineSID(id)); err != nil {
			d.opts.Log.Warn("start smbd before the data partition is mounted", "err", err)
		}
	}()
}

// startSMB starts smbd with machine SID sid (smb.PrepareRun), whose
// readiness it does not wait for (sharesUp).
func (d *Daemon) startSMB(ctx context.Context, sid string) error {
	fsc := d.opts.Config.FileServer
	if err := addAccount(fsc.User); err != nil {
		return fmt.Errorf("create the share user %s: %w", fsc.User, err)
	}
	// The link's address is read only where smb.conf names it: with the
	// host's network served, the link may still be coming up.
	var link *net.IPNet
	if !fsc.HostNetwork {
		link = d.linkAddr()
	}
	if err := smb.PrepareRun(fsc, link, sid); err != nil {
		return err
	}
	// The ready line waits for smbd to listen, and under TCG its start
	// (1.4-2 s of CPU) was the boot's longest step, sharing the CPUs
	// with the rest: it goes ahead of them until the ready line
	// (smbBootNice), then back to everyone's.
	svc := smb.Service()
	svc.Nice = smbBootNice
	if err := d.sup.Start(context.WithoutCancel(ctx), svc); err != nil {
		return fmt.Errorf("start smbd: %w", err)
	}
	d.smbSID = sid
	// Ready means the shares answer: smbd comes up (bounded) beside the
	// rest of the boot; Run waits for sharesUp before the guests start
	// and before the ready line. A stopped smbd's wait ends unrecorded.
	up := make(chan struct{})
	d.sharesUp = up
	waitCtx, cancel := context.WithCancel(ctx)
	d.smbStopWait = cancel
	go func() {
		defer close(up)
		defer cancel()
		if err := smb.WaitListening(waitCtx, 20*time.Second); err != nil {
			if waitCtx.Err() == nil {
				d.record("%v", err)
			}
			return
		}
		d.opts.Log.Info("smbd listening", "addresses", strings.Join(procnet.Listeners(445), " "))
	}()
	return nil
}

// smbBootNice is smbd's priority until the ready line.
const smbBootNice = -5

// smbAfterBoot gives smbd and what it forked everyone's priority.
func (d *Daemon) smbAfterBoot() {
	if d.smbSID == "" {
		return
	}
	if err := d.sup.Renice(smb.Service().Name, 0); err != nil {
		d.opts.Log.Warn("smbd's priority after the boot", "err", err)
	}
}

// stopSMB stops smbd if it was started.
func (d *Daemon) stopSMB() {
	if d.smbSID == "" {
		return
	}
	d.smbStopWait()
	if err := d.sup.Stop(smb.Service().Name); err != nil {
		d.opts.Log.Warn("stop smbd", "err", err)
	}
	d.smbSID, d.sharesUp = "", nil
}

// setupShares serves the shares once the data partition is mounted: the
// share folders on it, the user's password in Samba's database, and the
// machine SID the files' stored Windows ACLs name (smb.PrepareShares).
// smbd, started before with the SID made of the filesystem's UUID
// (startSharesEarly), goes on if that is the one; else it is started
// again with it (an image before kept another; files that came from
// another filesystem), or started now if it was not.
func (d *Daemon) setupShares(ctx context.Context) {
	fsc := d.opts.Config.FileServer
	log := d.opts.Log
	if fsc == nil {
		return
	}
	if d.smbEarly != nil {
		<-d.smbEarly
	}
	if d.data == nil || !d.data.Mounted {
		d.stopSMB()
		d.record("shares not served: they live on the data partition, which is not mounted")
		return
	}
	sid, err := d.prepareShares()
	if err != nil {
		d.stopSMB()
		d.record("shares not served: %v", err)
		return
	}
	if sid != d.smbSID {
		if d.smbSID != "" {
			log.Info("smbd starts again with the machine SID the shares' Windows ACLs name", "started_with", d.smbSID, "kept", sid)
			d.stopSMB()
		}
		if err := d.startSMB(ctx, sid); err != nil {
			d.record("%v", err)
			return
		}
	}
	// Logons begin here, under the SID just settled: none could store
	// an ACL naming another.
	if err := smb.WritePassword(fsc, d.sharePW); err != nil {
		d.stopSMB()
		d.record("shares not served: %v", err)
	}
}

// prepareShares finds the share user's password (d.sharePW) and readies
// the shares on the data partition (smb.PrepareShares); it returns the
// machine SID they name.
func (d *Daemon) prepareShares() (string, error) {
	fsc := d.opts.Config.FileServer
	pw, where, err := smb.Password(fsc, smb.PasswordFile)
	if err != nil {
		return "", err
	}
	d.sharePW, d.sharePWFrom = pw, where
	sid := d.smbSID
	if sid == "" {
		sid = smb.MachineSID(d.dataID)
	}
	kept, err := smb.PrepareShares(fsc, sid)
	if err != nil {
		return "", err
	}
	d.opts.Log.Info("shares ready", "shares", len(fsc.Shares), "user", fsc.User, "password", where, "host_network", fsc.HostNetwork)
	return kept, nil
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
