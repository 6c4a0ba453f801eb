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

	"github.com/thinhost/thinhost/hostd/smb"
	"github.com/thinhost/thinhost/hostd/storage"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/images/layout/config"
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
const ServicesDir = storage.DataDir + "/services"

// startServices runs the profile's services under the supervisor, each
// in a root of its own under ServiceRoots (the system image, so a program
// finds its package's data files where Debian puts them), each as its own
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
			uid, user = smb.ShareUID, d.opts.Config.FileServer.User
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
	for _, r := range run {
		s := r.spec
		binds := []string{r.home}
		if s.ShareUser {
			binds = append(binds, smb.SharesDir)
		}
		root, err := d.services.makeRoot(s.Name, binds)
		if err != nil {
			d.record("service %s not started: its root: %v", s.Name, err)
			continue
		}
		env := []string{"PATH=" + servicePath, "HOME=" + r.home, "USER=" + r.user, "LOGNAME=" + r.user, "LANG=C.UTF-8"}
		if s.ShareUser {
			env = append(env, shareEnv(d.opts.Config.FileServer)...)
		}
		env = append(env, s.Env...)
		err = d.sup.Start(context.WithoutCancel(ctx), supervise.Service{
			Name: s.Name, Path: s.Program, Args: s.Args, Env: env, Dir: r.home,
			Chroot:        root,
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

// servicePath is services' PATH, inside its root.
const servicePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// shareEnv tells a share_user service where the shares are:
// THINHOST_SHARES is their parent, THINHOST_SHARE_<NAME> each one (the
// name upper-cased, '-' as '_').
func shareEnv(fs *config.FileServer) []string {
	env := []string{"THINHOST_SHARES=" + smb.SharesDir}
	for _, sh := range fs.Shares {
		name := strings.ToUpper(strings.ReplaceAll(sh.Name, "-", "_"))
		env = append(env, "THINHOST_SHARE_"+name+"="+filepath.Join(smb.SharesDir, sh.Path))
	}
	return env
}

// ServiceRoots holds each service's root directory (NAME/root): the
// system image with a writable layer in memory (an overlay), so that a
// program finds its own package's files at the paths Debian gives them,
// with the host's /dev, /proc, a /tmp of its own, the host's account and
// network files (hostEtcFiles) bound read-only into its /etc, and of the
// data partition only its home (and the shares, for share_user): not the
// guests' disks, the logs, hostd's state or the other services' homes.
const ServiceRoots = "/run/thinhost/services"

// hostEtcFiles are bound into a service root's /etc, over the system
// image's own if it has one.
var hostEtcFiles = []string{"passwd", "group", "hosts", "resolv.conf", "hostname"}

// serviceRoots are the mounts made for the services' roots, taken apart
// in reverse once the services stopped.
type serviceRoots struct {
	mounts []string
}

func (r *serviceRoots) mount(src, dst, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", src, dst, err)
	}
	r.mounts = append(r.mounts, dst)
	return nil
}

// makeRoot makes NAME's root with the host paths binds (directories on
// the data partition) bound at the same paths inside, and returns it.
func (r *serviceRoots) makeRoot(name string, binds []string) (string, error) {
	if len(r.mounts) == 0 {
		if err := os.MkdirAll(ServiceRoots, 0o755); err != nil {
			return "", err
		}
		if err := r.mount("tmpfs", ServiceRoots, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return "", err
		}
	}
	base := filepath.Join(ServiceRoots, name)
	root := filepath.Join(base, "root")
	for _, dir := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", sysimage.Dir, base, base)
	if err := r.mount("overlay", root, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return "", fmt.Errorf("%w (is overlay among the kernel's modules?)", err)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	for _, dir := range append([]string{"dev", "proc", "tmp", "etc"}, binds...) {
		if err := os.MkdirAll(in(dir), 0o755); err != nil {
			return "", err
		}
	}
	if err := r.mount("/dev", in("dev"), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", err
	}
	if err := r.mount("proc", in("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", err
	}
	if err := r.mount("tmpfs", in("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return "", err
	}
	for _, b := range binds {
		if err := r.mount(b, in(b), "", unix.MS_BIND, ""); err != nil {
			return "", err
		}
	}
	// resolv.conf may not exist yet (DHCP runs beside): made empty now, it
	// is the file DHCP writes in place, so the bound copy follows it.
	if _, err := os.Stat("/etc/resolv.conf"); os.IsNotExist(err) {
		os.WriteFile("/etc/resolv.conf", nil, 0o644)
	}
	for _, f := range hostEtcFiles {
		src := filepath.Join("/etc", f)
		if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dst := in("etc/" + f)
		os.Remove(dst) // a link or file of the image's, in the writable layer
		if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return "", err
		}
		if err := r.mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return "", err
		}
		// A bind mount takes read-only only on a remount.
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return "", fmt.Errorf("make %s read-only: %w", dst, err)
		}
	}
	return root, nil
}

// unmount takes the roots apart once their services stopped, so that
// nothing holds the data partition when it is unmounted.
func (r *serviceRoots) unmount(log *slog.Logger) {
	for i := len(r.mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(r.mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			log.Warn("unmount", "dir", r.mounts[i], "err", err)
		}
	}
	r.mounts = nil
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
