package smbtorture

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StockConfig is a stock smbd on this machine: Samba's defaults with one
// plain writable share, what a person gets from `apt-get install samba` and
// three lines of smb.conf.
type StockConfig struct {
	// Dir holds the server's state and the share; it must be reachable
	// (o+x) by User, who owns the share folder.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Share, User and Password: the share and its account (User must
	// exist on this machine: EnsureUser).
	Share, User, Password string
	// Encrypt requires signed and encrypted sessions, as thinhost's share
	// does on the host's network: the same two lines of smb.conf.
	Encrypt bool
}

// Stock is a running stock smbd.
type Stock struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
	cfg  StockConfig
}

// StockConf is the stock server's smb.conf: run directories and the port
// (it must not touch the machine's own Samba), then defaults throughout.
func StockConf(c StockConfig) string {
	run := filepath.Join(c.Dir, "run")
	protect := ""
	if c.Encrypt {
		protect = "  server signing = mandatory\n  server smb encrypt = required\n"
	}
	return fmt.Sprintf(`[global]
%[5]s
  server role = standalone server
  smb ports = %[1]d
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  passdb backend = tdbsam:%[2]s/private/passdb.tdb
  private dir = %[2]s/private
  lock directory = %[2]s/lock
  state directory = %[2]s/state
  cache directory = %[2]s/cache
  pid directory = %[2]s/pid
  ncalrpc dir = %[2]s/ncalrpc
  log file = %[2]s/log/smbd.log

[%[3]s]
  path = %[4]s
  read only = no
`, c.Port, run, c.Share, filepath.Join(c.Dir, "share"), protect)
}

// StartStock starts smbd and smbpasswd from PATH with StockConf and waits
// until it accepts connections.
func StartStock(ctx context.Context, c StockConfig) (*Stock, error) {
	u, err := user.Lookup(c.User)
	if err != nil {
		return nil, fmt.Errorf("start stock smbd: share user: %w", err)
	}
	run := filepath.Join(c.Dir, "run")
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "log"} {
		if err := os.MkdirAll(filepath.Join(run, d), 0o755); err != nil {
			return nil, fmt.Errorf("start stock smbd: %w", err)
		}
	}
	share := filepath.Join(c.Dir, "share")
	if err := os.MkdirAll(share, 0o755); err != nil {
		return nil, fmt.Errorf("start stock smbd: %w", err)
	}
	var uid, gid int
	fmt.Sscan(u.Uid, &uid)
	fmt.Sscan(u.Gid, &gid)
	if err := os.Chown(share, uid, gid); err != nil {
		return nil, fmt.Errorf("start stock smbd: chown the share to %s: %w", c.User, err)
	}
	conf := filepath.Join(c.Dir, "smb.conf")
	if err := os.WriteFile(conf, []byte(StockConf(c)), 0o644); err != nil {
		return nil, fmt.Errorf("start stock smbd: %w", err)
	}
	pw := exec.CommandContext(ctx, "smbpasswd", "-c", conf, "-s", "-a", c.User)
	pw.Stdin = strings.NewReader(c.Password + "\n" + c.Password + "\n")
	if out, err := pw.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start stock smbd: smbpasswd: %w: %s", err, out)
	}
	st, err := Serve(ctx, conf, c.Port, filepath.Join(c.Dir, "smbd.out"))
	if err != nil {
		return nil, fmt.Errorf("start stock smbd: %w", err)
	}
	st.cfg = c
	return st, nil
}

// Serve starts smbd from PATH with the configuration file conf, which
// makes it listen on port of 127.0.0.1, in a process group of its own,
// its output in logPath, and waits until it accepts connections.
func Serve(ctx context.Context, conf string, port int, logPath string) (*Stock, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("smbd", "--foreground", "--no-process-group", "--debug-stdout", "--configfile="+conf)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so Stop ends smbd's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	s := &Stock{cmd: cmd, done: make(chan error, 1), log: log}
	go func() { s.done <- cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return s, nil
		}
		select {
		case err := <-s.done:
			b, _ := os.ReadFile(logPath)
			log.Close()
			return nil, fmt.Errorf("smbd exited (%v):\n%s", err, tail(string(b), 20))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("smbd is not listening on %s after 20s", addr)
		}
	}
}

// Target is how smbtorture reaches the stock share.
func (s *Stock) Target() Target {
	return Target{Host: "127.0.0.1", Port: s.cfg.Port, Share: s.cfg.Share, User: s.cfg.User, Password: s.cfg.Password}
}

// Stop ends smbd and its children.
func (s *Stock) Stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.log.Close()
}

// EnsureUser creates a system account without a home or login shell when
// name does not exist (as root; the stock server's share user).
func EnsureUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		return fmt.Errorf("create user %s: %w: %s", name, err, out)
	}
	return nil
}
