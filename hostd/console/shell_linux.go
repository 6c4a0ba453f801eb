package console

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/thinhost/thinhost/internal/passwd"
)

// ShellHint is printed after the ready line on the consoles.
const ShellHint = "thinhost: press Enter on this console for a debug shell ('hostd poweroff' powers off)"

// shells offers a debug shell on each console, on request: a line typed
// on a console starts the shell there, and when it exits, the console
// waits for the next line.
//
// hostd, not u-root's init, owns the consoles: a shell that starts on its
// own sets up the terminal and discards output still queued for it, which
// ate hostd's status lines (its power-off notice among them). On request
// only, and stopped before hostd prints its last lines, it cannot.
type Shells struct {
	path string
	log  *slog.Logger
	// reopen opens a terminal again: the shell, leading its own session
	// on it, leaves it hung up when it ends, for every descriptor.
	reopen func(name string) (*os.File, error)

	mu sync.Mutex
	// running are the shells, with their consoles' names.
	running map[*exec.Cmd]string
	stopped bool
	wg      sync.WaitGroup
}

// NewShells offers path (the shell program) on consoles; reopen opens a
// console again by name after a shell ended on it (nil: that console is
// offered no more shells).
func NewShells(path string, log *slog.Logger, reopen func(name string) (*os.File, error)) *Shells {
	return &Shells{path: path, log: log, reopen: reopen, running: map[*exec.Cmd]string{}}
}

// Offer serves tty until ctx is done. With a password hash (the panel's
// consoles), the shell starts only after the password is typed.
func (s *Shells) Offer(ctx context.Context, tty *os.File, hash string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		in := bufio.NewReader(tty)
		for ctx.Err() == nil {
			if _, err := in.ReadString('\n'); err != nil {
				return
			}
			if ctx.Err() != nil {
				return
			}
			if hash != "" {
				s.log.Info("debug shell: password asked", "console", tty.Name())
				ok, err := askPassword(tty, in, hash)
				if err != nil {
					return
				}
				if !ok {
					s.log.Warn("debug shell: wrong password", "console", tty.Name())
					fmt.Fprintln(tty, "wrong password")
					time.Sleep(3 * time.Second) // a guess every few seconds
					fmt.Fprintln(tty, ShellHint)
					continue
				}
			}
			if err := s.run(tty); err != nil {
				s.log.Warn("debug shell", "console", tty.Name(), "err", err)
				return
			}
			if s.reopen != nil {
				nt, err := s.reopen(tty.Name())
				if err != nil {
					s.log.Warn("reopen the console after the debug shell", "console", tty.Name(), "err", err)
					return
				}
				tty, in = nt, bufio.NewReader(nt)
			}
			fmt.Fprintln(tty, ShellHint)
		}
	}()
}

func (s *Shells) run(tty *os.File) error {
	// The plain line editor: the rich one asks the terminal questions
	// (cursor position, colours) that a serial console may never answer,
	// and then hangs.
	cmd := exec.Command(s.path, "-comp=false")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(os.Environ(), "TERM=linux")
	// Its own session with the console as controlling terminal, so Ctrl-C
	// reaches the shell's commands and not hostd.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.path, err)
	}
	s.running[cmd] = tty.Name()
	s.mu.Unlock()
	s.log.Info("debug shell started", "console", tty.Name(), "pid", cmd.Process.Pid)
	err := cmd.Wait()
	s.mu.Lock()
	delete(s.running, cmd)
	s.mu.Unlock()
	s.log.Info("debug shell exited", "console", tty.Name(), "status", err)
	return nil
}

// End ends the running shells on the consoles that match names.
func (s *Shells) End(match func(name string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cmd, name := range s.running {
		if match(name) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}

// Stop ends every running shell (its whole session) and stops offering
// new ones. The console readers end when ctx is cancelled and their
// terminals are closed.
func (s *Shells) Stop() {
	s.mu.Lock()
	s.stopped = true
	for cmd := range s.running {
		// The shell leads its own session and process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	s.mu.Unlock()
}

// IsPanelConsole reports whether the console device is one of the
// panel's virtual terminals ("/dev/tty0", "/dev/tty1"), as opposed to a
// serial port.
func IsPanelConsole(name string) bool {
	n, ok := strings.CutPrefix(name, "/dev/tty")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// askPassword asks for the shell's password on tty, without echo, and
// checks it against hash.
func askPassword(tty *os.File, in *bufio.Reader, hash string) (bool, error) {
	fmt.Fprint(tty, "password: ")
	defer NoEcho(tty)()
	line, err := in.ReadString('\n')
	fmt.Fprintln(tty)
	if err != nil {
		return false, err
	}
	return passwd.Verify(hash, strings.TrimRight(line, "\r\n")), nil
}
