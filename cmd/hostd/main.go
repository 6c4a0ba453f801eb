// Command hostd is the thinhost host daemon, the uinit of every thinhost
// image. u-root's init runs it in the foreground and would start a shell
// on the console only if it returned; hostd owns the consoles instead and
// offers a debug shell on them when someone presses Enter (see
// console.ShellHint).
//
//	hostd            run the daemon (as uinit)
//	hostd poweroff   ask the running daemon to shut the host down cleanly
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/hostd"
	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/console"
	"github.com/thinhost/thinhost/hostd/logring"
	"github.com/thinhost/thinhost/images/layout/config"
)

const (
	configPath = "/etc/thinhost/hostd.json"
	pidFile    = "/run/hostd.pid"
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
	return daemon()
}

func daemon() error {
	// Write to the console devices directly: u-root's init hands its
	// uinit pipes, which hostd could not drain before powering off.
	cmdline, _ := os.ReadFile("/proc/cmdline")
	con := console.OpenConsoles(string(cmdline))
	ring := logring.New(4000)
	// thinhost.debug on the kernel command line (the profile's
	// host.kernel.cmdline) logs each step in detail: each module loaded
	// and how long it took, each service's start.
	level := slog.LevelInfo
	if slices.Contains(strings.Fields(string(cmdline)), "thinhost.debug") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(con, ring), &slog.HandlerOptions{Level: level})).With("svc", "hostd")
	slog.SetDefault(log)
	// thinhost.cpuprofile: hostd's CPU profile from its start to the
	// ready line, written to the data partition (go tool pprof reads it).
	var profile bytes.Buffer
	profiling := slices.Contains(strings.Fields(string(cmdline)), "thinhost.cpuprofile") && pprof.StartCPUProfile(&profile) == nil
	cfg, err := config.Load(configPath)
	if err != nil {
		log.Error("cannot start", "err", err)
		return err
	}
	// SIGTERM powers off; SIGINT is Ctrl+Alt+Del, which the daemon
	// handles itself.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d := hostd.New(hostd.Options{
		Config:    cfg,
		Log:       log,
		Console:   con,
		Terminals: con.Files(),
		Reopen:    con.Reopen,
		Logs:      ring,
		Ready: func() {
			if profiling {
				pprof.StopCPUProfile()
				if err := os.WriteFile(cpuProfileFile, profile.Bytes(), 0o644); err != nil {
					log.Warn("write the boot's CPU profile", "err", err)
				} else {
					log.Info("the boot's CPU profile written", "file", cpuProfileFile)
				}
			}
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				log.Warn("write pid file", "file", pidFile, "err", err)
			}
		},
	})
	return d.Run(ctx)
}

// cpuProfileFile is where thinhost.cpuprofile writes hostd's CPU profile
// of the boot.
const cpuProfileFile = "/data/logs/boot-cpu.pprof"

func requestPoweroff() error {
	// Through the API's socket (root's alone, no token), as ctl asks;
	// the pid file and SIGTERM when the API is not up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := api.NewClient(hostd.SocketPath, "").Power(ctx, "poweroff")
	cancel()
	if err != nil {
		if serr := signalPoweroff(); serr != nil {
			return fmt.Errorf("ask hostd to power off: through %s: %v; by signal: %w", hostd.SocketPath, err, serr)
		}
	}
	fmt.Println("hostd: shutdown requested; the machine powers off in a moment")
	time.Sleep(30 * time.Second)
	return fmt.Errorf("the machine is still up 30s after the request: see the console for what hostd waits for")
}

// signalPoweroff sends the running hostd SIGTERM, which powers off.
func signalPoweroff() error {
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
	return nil
}
