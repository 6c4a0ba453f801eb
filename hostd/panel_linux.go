package hostd

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The Linux console's ioctls (linux/kd.h).
const (
	kdSetMode   = 0x4B3A // KDSETMODE
	kdGetKbMode = 0x4B44 // KDGKBMODE
	kdSetKbMode = 0x4B45 // KDSKBMODE
	kdText      = 0x00   // KD_TEXT
	kdGraphics  = 0x01   // KD_GRAPHICS
	kbOff       = 0x04   // K_OFF
)

// panel is the laptop's screen and keyboard as the host's virtual
// terminal has them. A guest with display = "sdl" takes it while it runs
// (vm.Panel): the VT goes into graphics mode (the kernel stops drawing
// its console over the guest) with its keyboard off (keys typed for the
// guest, which QEMU reads from the input devices, no longer reach the
// VT, where Enter would start a shell). The last guest to give it back
// restores the VT.
type panel struct {
	log *slog.Logger
	// path is the VT device; "/dev/tty0" is the one shown.
	path string

	mu     sync.Mutex
	owners map[string]bool
	tty    *os.File
	kbMode int
}

func newPanel(log *slog.Logger) *panel {
	return &panel{log: log, path: "/dev/tty0", owners: map[string]bool{}}
}

// Take gives the panel to guest vm.
func (p *panel) Take(vm string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.owners) == 0 {
		if err := p.toGraphics(); err != nil {
			p.log.Warn("the panel stays a text console: keys typed for the guest may reach it", "vm", vm, "err", err)
		}
	}
	p.owners[vm] = true
}

// Give takes the panel back from vm.
func (p *panel) Give(vm string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.owners[vm] {
		return
	}
	delete(p.owners, vm)
	if len(p.owners) == 0 && p.tty != nil {
		if err := ioctlInt(p.tty, kdSetMode, kdText); err != nil {
			p.log.Warn("restore the console's text mode", "err", err)
		}
		if err := ioctlInt(p.tty, kdSetKbMode, p.kbMode); err != nil {
			p.log.Warn("restore the console's keyboard", "err", err)
		}
		p.tty.Close()
		p.tty = nil
		p.log.Info("the panel is the host's console again", "vm", vm)
	}
}

// Owned reports whether a guest has the panel.
func (p *panel) Owned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.owners) > 0
}

func (p *panel) toGraphics() error {
	tty, err := os.OpenFile(p.path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	mode, err := unix.IoctlGetInt(int(tty.Fd()), kdGetKbMode)
	if err != nil {
		tty.Close()
		return fmt.Errorf("read the keyboard mode of %s: %w", p.path, err)
	}
	if err := ioctlInt(tty, kdSetKbMode, kbOff); err != nil {
		tty.Close()
		return fmt.Errorf("turn the keyboard of %s off: %w", p.path, err)
	}
	if err := ioctlInt(tty, kdSetMode, kdGraphics); err != nil {
		ioctlInt(tty, kdSetKbMode, mode)
		tty.Close()
		return fmt.Errorf("put %s in graphics mode: %w", p.path, err)
	}
	p.tty, p.kbMode = tty, mode
	p.log.Info("a guest has the panel: the console's keyboard is off", "console", p.path)
	return nil
}

// ioctlInt passes an int by value, as the console's mode ioctls take it.
func ioctlInt(f *os.File, req uint, v int) error {
	return unix.IoctlSetInt(int(f.Fd()), req, v)
}

// takeCtrlAltDel keeps the kernel from restarting the machine at once,
// unsynced, on Ctrl+Alt+Del: the kernel then signals SIGINT to cad_pid,
// which becomes hostd (not u-root's init, which would exit on it and
// panic the kernel). hostd decides (Daemon.ctrlAltDel).
func takeCtrlAltDel() error {
	// In this order: with the restart off but cad_pid still init, the
	// kernel's SIGINT would end init.
	if err := os.WriteFile("/proc/sys/kernel/cad_pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("make hostd the Ctrl+Alt+Del process (the kernel restarts the machine on it): %w", err)
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		return fmt.Errorf("turn the kernel's Ctrl+Alt+Del restart off: %w", err)
	}
	return nil
}
