package console

import (
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Consoles are the terminals hostd writes its log and status lines to.
//
// u-root's init gives its uinit pipes that it copies to the consoles, and
// the copy stops when the uinit returns; so the daemon writes to the
// console devices itself. That also lets it wait for the last lines to
// leave the UART before powering off (Drain), which through a pipe it
// could not.
//
// A debug shell on a serial console leads its own session with the
// console as its controlling terminal; when it ends, the kernel hangs the
// terminal up (tty_vhangup_session), and every descriptor open on it
// fails from then on, hostd's too. So a console whose write fails is
// opened again (Reopen), and the shell's offer reopens its terminal.
type Consoles struct {
	mu    sync.Mutex
	files []*os.File
}

var _ io.Writer = (*Consoles)(nil)

// OpenConsoles opens every console= device of the kernel command line in
// cmdline (the text of /proc/cmdline), or /dev/console when none can be
// opened.
func OpenConsoles(cmdline string) *Consoles {
	c := &Consoles{}
	seen := map[string]bool{}
	for _, f := range strings.Fields(cmdline) {
		v, ok := strings.CutPrefix(f, "console=")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(v, ",")
		if name == "" || strings.ContainsRune(name, '/') || seen[name] {
			continue
		}
		seen[name] = true
		if fh, err := os.OpenFile("/dev/"+name, os.O_RDWR|unix.O_NOCTTY, 0); err == nil {
			c.files = append(c.files, fh)
		}
	}
	if len(c.files) == 0 {
		if fh, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0); err == nil {
			c.files = append(c.files, fh)
		}
	}
	return c
}

// Files are the open console terminals.
func (c *Consoles) Files() []*os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*os.File(nil), c.files...)
}

// Reopen opens the console device name (a path from Files) again, in
// place of its hung-up descriptor, and returns the new one.
func (c *Consoles) Reopen(name string) (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reopen(name)
}

func (c *Consoles) reopen(name string) (*os.File, error) {
	fh, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	for i, f := range c.files {
		if f.Name() == name {
			// Hung up, the old descriptor reads and writes nothing more;
			// a shell's offer that read it reopens for itself.
			f.Close()
			c.files[i] = fh
		}
	}
	return fh, nil
}

// Write writes p to every console; a console that fails is opened again
// and written once more, and then skipped, so one bad terminal does not
// silence the others.
func (c *Consoles) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.files {
		if _, err := f.Write(p); err != nil {
			if nf, err := c.reopen(f.Name()); err == nil {
				_, _ = nf.Write(p)
			}
		}
	}
	return len(p), nil
}

// Drain waits until what was written has been transmitted (tcdrain).
// The kernel's wait is interruptible, and Go's runtime signals its threads
// (preemption), so an interrupted wait is simply waited again.
func (c *Consoles) Drain() {
	for _, f := range c.Files() {
		for range 100 {
			if err := unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1); err != unix.EINTR {
				break
			}
		}
	}
}
