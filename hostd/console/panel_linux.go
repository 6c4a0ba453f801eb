package console

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/thinhost/thinhost/hostd/keyboard"
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
// its console over the guest) with its keyboard off, and hostd holds the
// keyboards (keys): QEMU reads hostd's virtual keyboard, which gets every
// key but the host key combination. That combination turns the panel
// to the host's console, where the debug shell asks for the profile's
// password, and back. The last guest to give the panel back restores
// the VT.
type Panel struct {
	log *slog.Logger
	// path is the VT device; "/dev/tty0" is the one shown.
	path string
	// console gets hostd's status lines.
	console io.Writer
	// keys holds the keyboards for the guests; nil: they read the
	// keyboards themselves, and there is no host key combination.
	keys *keyboard.Holder
	// shellHash is the panel's shell password's hash; "": no shell on
	// the panel, and the combination offers none.
	shellHash string

	mu     sync.Mutex
	owners map[string]bool
	// graphics is set while the VT is in graphics mode for the guests,
	// kbMode the keyboard mode it had before. The VT is opened anew for
	// each change: a debug shell that ends hangs up every descriptor of
	// its terminal.
	graphics bool
	kbMode   int
	sysrq    []byte
	// endShells ends the debug shells on the panel's consoles.
	endShells func()
	// host is set while the host's console has the panel; screen is
	// what it took from the guest's QEMU then.
	host   bool
	screen *screenLease
}

// NewPanel is the panel (the first VT, /dev/tty0); console is where it
// says what the host key combination does.
func NewPanel(log *slog.Logger, console io.Writer) *Panel {
	return &Panel{log: log, path: "/dev/tty0", console: console, owners: map[string]bool{}}
}

// HoldKeys makes the virtual keyboard the guests read (before the first
// guest starts: QEMU's SDL looks for keyboards only at its start).
func (p *Panel) HoldKeys(shellHash string) error {
	h, err := keyboard.Open(p.log, p.combo, p.typed)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.keys, p.shellHash = h, shellHash
	p.mu.Unlock()
	return nil
}

// SetShells gives the panel end, which ends the debug shells on the
// panel's consoles when the guest takes the panel back.
func (p *Panel) SetShells(end func()) {
	p.mu.Lock()
	p.endShells = end
	p.mu.Unlock()
}

// Take gives the panel to guest vm.
func (p *Panel) Take(vm string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.owners) == 0 {
		if err := p.toGraphics(); err != nil {
			p.log.Warn("the panel stays a text console: keys typed for the guest may reach it", "vm", vm, "err", err)
		}
		p.sysrqOff()
		if p.keys != nil {
			p.keys.Hold()
		}
	}
	p.owners[vm] = true
}

// Give takes the panel back from vm.
func (p *Panel) Give(vm string) {
	p.mu.Lock()
	if !p.owners[vm] {
		p.mu.Unlock()
		return
	}
	delete(p.owners, vm)
	last := len(p.owners) == 0
	keys := p.keys
	p.mu.Unlock()
	if !last {
		return
	}
	// Outside the lock: a reader that is calling combo or typed ends.
	if keys != nil {
		keys.Release()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.owners) > 0 {
		return // taken again meanwhile
	}
	p.host = false
	if p.screen != nil {
		// Its QEMU is gone: the copy of its descriptor goes too, and
		// the console below takes the screen.
		p.screen.close()
		p.screen = nil
	}
	p.sysrqRestore()
	if p.graphics {
		err := p.vt(func(tty *os.File) error {
			if err := ioctlInt(tty, kdSetMode, kdText); err != nil {
				return fmt.Errorf("restore the console's text mode: %w", err)
			}
			if err := ioctlInt(tty, kdSetKbMode, p.kbMode); err != nil {
				return fmt.Errorf("restore the console's keyboard: %w", err)
			}
			return nil
		})
		if err != nil {
			p.log.Warn("give the panel back to the host", "err", err)
		}
		p.graphics = false
		p.log.Info("the panel is the host's console again", "vm", vm)
	}
}

// Owned reports whether a guest has the panel.
func (p *Panel) Owned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.owners) > 0
}

// guests names the panel's guests, for people.
func (p *Panel) guests() string {
	names := slices.Sorted(maps.Keys(p.owners))
	return "vm " + strings.Join(names, ", vm ")
}

// combo is the host key combination: to the host's console (with a
// shell password) or back to the guest. It says whether the keys go to
// to.
func (p *Panel) combo(to keyboard.Target) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.owners) == 0 || !p.graphics {
		return false
	}
	if to == keyboard.Guest {
		p.toGuest()
		return true
	}
	if p.shellHash == "" {
		fmt.Fprintf(p.console, "thinhost: panel: %s: no shell on the panel (the profile sets no shell_password); the keys stay with %s\n", keyboard.Combo, p.guests())
		return false
	}
	s, err := takeScreen()
	if err != nil {
		p.log.Warn("the guest's frames may cover the host's console", "err", err)
	}
	p.screen = s
	// Text mode makes the kernel's console draw the screen again; the
	// keyboard stays off: hostd types what is typed (typed).
	err = p.vt(func(tty *os.File) error {
		if err := ioctlInt(tty, kdSetMode, kdText); err != nil {
			return err
		}
		_, err := fmt.Fprintf(tty, "\r\nthinhost: the host's console; %s gives the panel back to %s.\r\n%s\r\n", keyboard.Combo, p.guests(), ShellHint)
		return err
	})
	if err != nil {
		p.log.Warn("show the host's console", "err", err)
	}
	p.host = true
	fmt.Fprintf(p.console, "thinhost: panel: the host's console (%s gives it back to %s)\n", keyboard.Combo, p.guests())
	return true
}

// toGuest gives the panel back to its guest: the debug shell on it ends
// (the next visit asks for the password again), what was typed and not
// yet read is dropped, and the guest's last frame shows. p.mu is held.
func (p *Panel) toGuest() {
	if p.endShells != nil {
		p.endShells()
	}
	err := p.vt(func(tty *os.File) error {
		_ = unix.IoctlSetInt(int(tty.Fd()), unix.TCFLSH, unix.TCIFLUSH)
		return ioctlInt(tty, kdSetMode, kdGraphics)
	})
	if err != nil {
		p.log.Warn("put the console back in graphics mode", "err", err)
	}
	if p.screen != nil {
		if err := p.screen.giveBack(); err != nil {
			p.log.Warn("the guest shows again at its next frame", "err", err)
		}
		p.screen = nil
	}
	p.host = false
	fmt.Fprintf(p.console, "thinhost: panel: back to %s\n", p.guests())
}

// typed puts what a key typed on the host's console into the console's
// input, as if its keyboard had typed it.
func (p *Panel) typed(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.host {
		return
	}
	err := p.vt(func(tty *os.File) error {
		for i := range b {
			if err := unix.IoctlSetPointerInt(int(tty.Fd()), unix.TIOCSTI, int(b[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.log.Warn("type on the host's console", "err", err)
	}
}

// sysrqOff turns the kernel's SysRq keys off while a guest has the
// keyboard: Alt+PrtSc (a screenshot in Windows) with S, U or B would
// sync, remount read-only or restart the host. p.mu is held.
func (p *Panel) sysrqOff() {
	old, err := os.ReadFile(sysrqPath)
	if err != nil {
		return
	}
	if err := os.WriteFile(sysrqPath, []byte("0\n"), 0o644); err != nil {
		p.log.Warn("turn the SysRq keys off", "err", err)
		return
	}
	p.sysrq = old
}

func (p *Panel) sysrqRestore() {
	if p.sysrq == nil {
		return
	}
	if err := os.WriteFile(sysrqPath, p.sysrq, 0o644); err != nil {
		p.log.Warn("turn the SysRq keys back on", "err", err)
	}
	p.sysrq = nil
}

const sysrqPath = "/proc/sys/kernel/sysrq"

// vt runs f on the VT, opened for it.
func (p *Panel) vt(f func(tty *os.File) error) error {
	tty, err := os.OpenFile(p.path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer tty.Close()
	return f(tty)
}

func (p *Panel) toGraphics() error {
	return p.vt(func(tty *os.File) error {
		mode, err := unix.IoctlGetInt(int(tty.Fd()), kdGetKbMode)
		if err != nil {
			return fmt.Errorf("read the keyboard mode of %s: %w", p.path, err)
		}
		if err := ioctlInt(tty, kdSetKbMode, kbOff); err != nil {
			return fmt.Errorf("turn the keyboard of %s off: %w", p.path, err)
		}
		if err := ioctlInt(tty, kdSetMode, kdGraphics); err != nil {
			ioctlInt(tty, kdSetKbMode, mode)
			return fmt.Errorf("put %s in graphics mode: %w", p.path, err)
		}
		p.graphics, p.kbMode = true, mode
		p.log.Info("a guest has the panel: the console's keyboard is off", "console", p.path)
		return nil
	})
}

// ioctlInt passes an int by value, as the console's mode ioctls take it.
func ioctlInt(f *os.File, req uint, v int) error {
	return unix.IoctlSetInt(int(f.Fd()), req, v)
}

// TakeCtrlAltDel keeps the kernel from restarting the machine at once,
// unsynced, on Ctrl+Alt+Del: the kernel then signals SIGINT to cad_pid,
// which becomes hostd (not u-root's init, which would exit on it and
// panic the kernel). hostd decides (Daemon.ctrlAltDel).
func TakeCtrlAltDel() error {
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
