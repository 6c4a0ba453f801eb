package console

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestAskConsoles: the question goes to every console with echo off; the
// first answer wins, and the other console stops asking and gets its
// echo back.
func TestAskConsoles(t *testing.T) {
	if _, err := AskConsoles(nil)(context.Background(), "p: "); !errors.Is(err, ErrNoConsole) {
		t.Errorf("no terminals: %v", err)
	}
	open := func() (term, ctl *os.File) {
		t.Helper()
		ctl, term, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		t.Cleanup(func() { ctl.Close(); term.Close() })
		return term, ctl
	}
	t1, c1 := open()
	t2, c2 := open()
	done := make(chan string)
	go func() {
		got, err := AskConsoles([]*os.File{t1, t2})(context.Background(), "passphrase: ")
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	buf := make([]byte, 64)
	n, _ := c1.Read(buf)
	if !strings.Contains(string(buf[:n]), "passphrase: ") {
		t.Fatalf("console 1 shows %q", buf[:n])
	}
	for {
		tio, err := unix.IoctlGetTermios(int(t2.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break // asking, without echo
		}
		time.Sleep(10 * time.Millisecond)
	}
	c2.Write([]byte("secret words\n"))
	select {
	case got := <-done:
		if got != "secret words" {
			t.Errorf("answer %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	for _, tt := range []*os.File{t1, t2} {
		tio, err := unix.IoctlGetTermios(int(tt.Fd()), unix.TCGETS)
		if err != nil || tio.Lflag&unix.ECHO == 0 {
			t.Errorf("%s: echo not restored (%v)", tt.Name(), err)
		}
	}
}
