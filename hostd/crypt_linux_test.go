package hostd

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

// scripted is an Asker that answers from a script and records prompts.
type scripted struct {
	answers []string
	prompts []string
}

func (s *scripted) ask(_ context.Context, prompt string) (string, error) {
	s.prompts = append(s.prompts, prompt)
	if len(s.answers) == 0 {
		return "", errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

// TestNewPassphrase: a passphrase too short or not typed the same twice
// is asked for again, saying why; nothing else ends it but a good one.
func TestNewPassphrase(t *testing.T) {
	s := &scripted{answers: []string{"short", "long enough", "long enuf", "long enough", "long enough"}}
	got, err := newPassphrase(context.Background(), s.ask)
	if err != nil || got != "long enough" {
		t.Fatalf("newPassphrase = %q, %v", got, err)
	}
	want := []string{"choose its passphrase", "at least 8 characters", "the same passphrase again", "the two differed", "the same passphrase again"}
	if len(s.prompts) != len(want) {
		t.Fatalf("prompts %q", s.prompts)
	}
	for i, w := range want {
		if !strings.Contains(s.prompts[i], w) {
			t.Errorf("prompt %d = %q, want %q in it", i, s.prompts[i], w)
		}
	}
	if _, err := newPassphrase(context.Background(), (&scripted{}).ask); err == nil {
		t.Error("no console: no error")
	}
	if _, err := askConsoles(nil)(context.Background(), "p: "); !errors.Is(err, errNoConsole) {
		t.Errorf("no terminals: %v", err)
	}
}

// TestAskConsoles: the question goes to every console with echo off; the
// first answer wins, and the other console stops asking and gets its
// echo back.
func TestAskConsoles(t *testing.T) {
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
		got, err := askConsoles([]*os.File{t1, t2})(context.Background(), "passphrase: ")
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
