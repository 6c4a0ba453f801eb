package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrNoConsole means no console can ask for the passphrase.
var ErrNoConsole = errors.New("no console to ask for the data partition's passphrase on (the profile's host.console)")

// AskConsoles asks on every terminal at once, with echo off; the first
// line typed wins and the others stop asking.
func AskConsoles(terms []*os.File) func(ctx context.Context, prompt string) (string, error) {
	return func(ctx context.Context, prompt string) (string, error) {
		if len(terms) == 0 {
			return "", ErrNoConsole
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type answer struct {
			line string
			err  error
		}
		ch := make(chan answer, len(terms))
		var wg sync.WaitGroup
		for _, t := range terms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line, err := readSecret(ctx, t, prompt)
				ch <- answer{line, err}
			}()
		}
		var last error
		for range terms {
			a := <-ch
			if a.err == nil {
				cancel()
				wg.Wait() // the others restored their terminals
				return a.line, nil
			}
			last = a.err
		}
		return "", last
	}
}

// readSecret shows prompt on tty and reads one line without echo, until
// ctx ends.
func readSecret(ctx context.Context, tty *os.File, prompt string) (string, error) {
	// Echo off before the prompt shows: an answer typed (or pasted) the
	// moment the prompt appears is not echoed either.
	defer NoEcho(tty)()
	fmt.Fprint(tty, prompt)
	fd := int(tty.Fd())
	var line []byte
	buf := make([]byte, 256)
	for {
		if ctx.Err() != nil {
			fmt.Fprintln(tty)
			return "", ctx.Err()
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 250)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return "", fmt.Errorf("read %s: %w", tty.Name(), err)
		}
		if n == 0 || pfd[0].Revents&unix.POLLIN == 0 {
			if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				return "", fmt.Errorf("read %s: hung up", tty.Name())
			}
			continue
		}
		n, err = unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return "", fmt.Errorf("read %s: %w", tty.Name(), err)
		}
		if n == 0 {
			return "", fmt.Errorf("read %s: end of input", tty.Name())
		}
		line = append(line, buf[:n]...)
		if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
			fmt.Fprintln(tty)
			return string(line[:i]), nil
		}
		if len(line) > 4096 {
			line = line[:0] // no passphrase is this long: start over
		}
	}
}

// NoEcho turns tty's echo off, for a secret typed on it; the function it
// returns turns it back on. A file that is no terminal is left alone.
func NoEcho(tty *os.File) (restore func()) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

// ClearTerminals clears the consoles' screens and scrollback (ESC [2J,
// ESC [3J), as after the recovery key was shown on them.
func ClearTerminals(terms []*os.File) {
	for _, t := range terms {
		t.WriteString("\x1b[2J\x1b[3J\x1b[H")
	}
}
