package hostd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/hostd/config"
	"github.com/thinhost/thinhost/hostd/supervise"
)

// Services' uids (and gids): each service runs as a user of its own, in
// [serviceUIDBase, serviceUIDBase+serviceUIDRange).
const (
	serviceUIDBase  = 2000
	serviceUIDRange = 60000
)

// ServiceUIDs gives each service a uid derived from its name, so the
// owner of its home on the data partition stays the same when the
// profile adds, drops or reorders services; names whose uids collide take
// the next free one, in name order.
func ServiceUIDs(names []string) map[string]int {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	taken := map[int]bool{}
	out := map[string]int{}
	for _, n := range sorted {
		h := fnv.New32a()
		h.Write([]byte(n))
		off := int(h.Sum32() % serviceUIDRange)
		for taken[serviceUIDBase+off] {
			off = (off + 1) % serviceUIDRange
		}
		taken[serviceUIDBase+off] = true
		out[n] = serviceUIDBase + off
	}
	return out
}

// ServicesDir holds each service's home, the one place on the data
// partition it may write.
const ServicesDir = DataDir + "/services"

// startServices runs the profile's services under the supervisor, in
// ServiceRoot (the system image as their root, so a program finds its
// package's data files where Debian puts them), each as its own
// unprivileged user — or, with share_user, as the share user — with
// /data/services/NAME as home and working directory, restarted as its
// restart policy says; their output goes into hostd's log.
func (d *Daemon) startServices(ctx context.Context) {
	log := d.opts.Log
	svcs := d.opts.Config.Services
	if len(svcs) == 0 {
		return
	}
	if d.data == nil || !d.data.Mounted {
		d.record("services not started: their homes live on the data partition, which is not mounted")
		return
	}
	var names []string
	for _, s := range svcs {
		names = append(names, s.Name)
	}
	uids := ServiceUIDs(names)
	type ready struct {
		spec       config.Service
		uid        int
		user, home string
	}
	var run []ready
	for _, s := range svcs {
		uid, user := uids[s.Name], "svc-"+s.Name
		if s.ShareUser {
			if d.opts.Config.FileServer == nil {
				d.record("service %s not started: share_user without shares", s.Name)
				continue
			}
			uid, user = shareUID, d.opts.Config.FileServer.User
		}
		home, err := serviceHome(s.Name, uid)
		if err != nil {
			d.record("service %s not started: %v", s.Name, err)
			continue
		}
		if !s.ShareUser {
			if err := ensureAccounts([]string{fmt.Sprintf("%s:x:%d:%d:thinhost service %s:%s:/bin/false", user, uid, uid, s.Name, home)},
				[]string{fmt.Sprintf("%s:x:%d:", user, uid)}); err != nil {
				d.record("service %s not started: its account: %v", s.Name, err)
				continue
			}
		}
		run = append(run, ready{s, uid, user, home})
	}
	if len(run) == 0 {
		return
	}
	if err := makeServiceRoot(); err != nil {
		d.record("services not started: their root: %v", err)
		return
	}
	d.serviceRoot = true
	for _, r := range run {
		s := r.spec
		env := []string{"PATH=" + servicePath, "HOME=" + r.home, "USER=" + r.user, "LOGNAME=" + r.user, "LANG=C.UTF-8"}
		if s.ShareUser {
			env = append(env, shareEnv(d.opts.Config.FileServer)...)
		}
		env = append(env, s.Env...)
		err := d.sup.Start(context.WithoutCancel(ctx), supervise.Service{
			Name: s.Name, Path: s.Program, Args: s.Args, Env: env, Dir: r.home,
			Chroot:        ServiceRoot,
			Credential:    &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.uid)},
			DoneOnSuccess: s.Restart == "on-failure",
			Once:          s.Restart == "never",
		})
		if err != nil {
			d.record("start service %s: %v", s.Name, err)
			continue
		}
		log.Info("service started", "service", s.Name, "program", s.Program, "user", r.user, "uid", r.uid, "restart", s.Restart)
	}
}

// servicePath is services' PATH, inside ServiceRoot.
const servicePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// shareEnv tells a share_user service where the shares are:
// THINHOST_SHARES is their parent, THINHOST_SHARE_<NAME> each one (the
// name upper-cased, '-' as '_').
func shareEnv(fs *config.FileServer) []string {
	env := []string{"THINHOST_SHARES=" + SharesDir}
	for _, sh := range fs.Shares {
		name := strings.ToUpper(strings.ReplaceAll(sh.Name, "-", "_"))
		env = append(env, "THINHOST_SHARE_"+name+"="+filepath.Join(SharesDir, sh.Path))
	}
	return env
}

// ServiceRoot is the root directory services run in: the system image
// with a writable layer in memory (an overlay), so that a program finds
// its own package's files at the paths Debian gives them, with the
// host's /dev, /proc, /data, a /tmp of its own, and the host's account
// and network files (hostEtcFiles) bound read-only into its /etc — those
// alone: the rest of the host's /etc (hostd's configuration with its
// secrets) stays out of reach.
const ServiceRoot = "/run/thinhost/services/root"

// hostEtcFiles are bound into ServiceRoot's /etc, over the system image's
// own if it has one.
var hostEtcFiles = []string{"passwd", "group", "hosts", "resolv.conf", "hostname"}

func makeServiceRoot() error {
	base := filepath.Dir(ServiceRoot)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", base, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", base, err)
	}
	for _, dir := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(base, dir), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", SystemDir, base, base)
	if err := unix.Mount("overlay", ServiceRoot, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount overlay of %s on %s: %w (is overlay among the kernel's modules?)", SystemDir, ServiceRoot, err)
	}
	in := func(p string) string { return filepath.Join(ServiceRoot, p) }
	for _, dir := range []string{"dev", "proc", "tmp", "data", "etc"} {
		if err := os.MkdirAll(in(dir), 0o755); err != nil {
			return err
		}
	}
	type mount struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}
	mounts := []mount{
		{"/dev", "dev", "", unix.MS_BIND | unix.MS_REC, ""},
		{"proc", "proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"tmpfs", "tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{DataDir, "data", "", unix.MS_BIND, ""},
	}
	var readOnly []string
	for _, f := range hostEtcFiles {
		src := filepath.Join("/etc", f)
		if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dst := in("etc/" + f)
		os.Remove(dst) // a link or file of the image's, in the writable layer
		if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return err
		}
		mounts = append(mounts, mount{src, "etc/" + f, "", unix.MS_BIND, ""})
		readOnly = append(readOnly, "etc/"+f)
	}
	for _, m := range mounts {
		if err := unix.Mount(m.src, in(m.dst), m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.src, in(m.dst), err)
		}
	}
	// A bind mount takes read-only only on a remount.
	for _, p := range readOnly {
		if err := unix.Mount("", in(p), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", in(p), err)
		}
	}
	return nil
}

// unmountServiceRoot takes ServiceRoot apart once its services stopped,
// so that nothing holds the data partition when it is unmounted.
func unmountServiceRoot(log *slog.Logger) {
	dirs := []string{"data", "tmp", "proc", "dev", ""}
	for _, f := range hostEtcFiles {
		dirs = append([]string{"etc/" + f}, dirs...)
	}
	for _, dir := range dirs {
		p := filepath.Join(ServiceRoot, dir)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			log.Warn("unmount", "dir", p, "err", err)
		}
	}
}

// serviceHome makes /data/services/NAME for uid, never through a symbolic
// link, and returns it.
func serviceHome(name string, uid int) (string, error) {
	if err := os.MkdirAll(ServicesDir, 0o755); err != nil {
		return "", err
	}
	home := filepath.Join(ServicesDir, name)
	if err := os.Mkdir(home, 0o700); err != nil && !os.IsExist(err) {
		return "", err
	}
	fi, err := os.Lstat(home)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory (a symbolic link?): remove it", home)
	}
	if err := os.Lchown(home, uid, uid); err != nil {
		return "", fmt.Errorf("chown %s: %w", home, err)
	}
	return home, nil
}
