package hostd

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"syscall"

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

// startServices runs the profile's services from the system image under
// the supervisor, each as its own unprivileged user with
// /data/services/NAME as home and working directory, restarted as its
// restart policy says; their output goes into hostd's log.
func (d *Daemon) startServices(ctx context.Context) {
	log := d.opts.Log
	var names []string
	for _, s := range d.opts.Config.Services {
		names = append(names, s.Name)
	}
	uids := ServiceUIDs(names)
	for _, s := range d.opts.Config.Services {
		if d.data == nil || !d.data.Mounted {
			log.Error("service not started: its home lives on the data partition, which is not mounted", "service", s.Name)
			continue
		}
		uid := uids[s.Name]
		home, err := serviceHome(s.Name, uid)
		if err != nil {
			log.Error("service not started", "service", s.Name, "err", err)
			continue
		}
		user := "svc-" + s.Name
		if err := ensureAccounts([]string{fmt.Sprintf("%s:x:%d:%d:thinhost service %s:%s:/bin/false", user, uid, uid, s.Name, home)},
			[]string{fmt.Sprintf("%s:x:%d:", user, uid)}); err != nil {
			log.Error("service not started: its account", "service", s.Name, "err", err)
			continue
		}
		path, args := systemProgram(s.Program, s.Args...)
		env := append(systemEnv(), "HOME="+home, "USER="+user, "LOGNAME="+user)
		env = append(env, s.Env...)
		err = d.sup.Start(context.WithoutCancel(ctx), supervise.Service{
			Name: s.Name, Path: path, Args: args, Env: env, Dir: home,
			Credential:    &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
			DoneOnSuccess: s.Restart == "on-failure",
			Once:          s.Restart == "never",
		})
		if err != nil {
			log.Error("start service", "service", s.Name, "err", err)
			continue
		}
		log.Info("service started", "service", s.Name, "program", s.Program, "uid", uid, "restart", s.Restart)
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
