// Command hostd is the thinhost host daemon, the uinit of every thinhost
// image. u-root's init runs it and waits for it to return before starting
// the console shell, so hostd starts a copy of itself in the background,
// waits until that copy is ready, and returns: the console then gets a
// debug shell while the daemon runs.
//
//	hostd            start the daemon (as uinit)
//	hostd poweroff   ask the running daemon to shut down cleanly
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/hostd"
	"github.com/thinhost/thinhost/hostd/config"
)

const (
	configPath = "/etc/thinhost/hostd.json"
	pidFile    = "/run/hostd.pid"
	daemonEnv  = "THINHOST_HOSTD_DAEMON"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hostd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "poweroff":
			return requestPoweroff()
		default:
			return fmt.Errorf("unknown command %q (want: poweroff)", args[0])
		}
	}
	if os.Getenv(daemonEnv) == "" {
		return spawnDaemon()
	}
	return daemon()
}

// spawnDaemon starts the daemon in its own session and returns once it
// reports ready on fd 3 (or exits).
func spawnDaemon() error {
	self, err := os.Executable()
	if err != nil {
		self = "/bbin/hostd"
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create ready pipe: %w", err)
	}
	// The daemon gets /dev/null for stdio: init's pipes must close when
	// this process returns, or init would wait on them forever. The
	// daemon opens the consoles itself.
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer null.Close()
	attr := &os.ProcAttr{
		Env:   append(os.Environ(), daemonEnv+"=1"),
		Files: []*os.File{null, null, null, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	p, err := os.StartProcess(self, []string{"hostd"}, attr)
	w.Close()
	if err != nil {
		return fmt.Errorf("start hostd daemon: %w", err)
	}
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n == 1 {
		return nil
	}
	st, _ := p.Wait()
	return fmt.Errorf("hostd daemon exited before it was ready: %v", st)
}

func daemon() error {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	con := hostd.OpenConsoles(string(cmdline))
	log := slog.New(slog.NewTextHandler(con, &slog.HandlerOptions{Level: slog.LevelInfo})).With("svc", "hostd")
	slog.SetDefault(log)
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	_ = os.MkdirAll("/run", 0o755)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ready := os.NewFile(3, "ready")
	d := hostd.New(hostd.Options{
		Config:  cfg,
		Log:     log,
		Console: con,
		Ready: func() {
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				log.Warn("write pid file", "err", err)
			}
			if ready != nil {
				_, _ = ready.Write([]byte{1})
				ready.Close()
			}
		},
	})
	return d.Run(ctx)
}

func requestPoweroff() error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("find running hostd: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("read %s: %w", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal hostd (pid %d): %w", pid, err)
	}
	fmt.Println("hostd: shutdown requested; the machine powers off in a moment")
	time.Sleep(10 * time.Second)
	return fmt.Errorf("the machine is still up 10s after the request")
}
