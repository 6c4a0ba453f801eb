package console

import (
	"bufio"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/internal/passwd"
)

func TestIsPanelConsole(t *testing.T) {
	for name, want := range map[string]bool{"/dev/tty0": true, "/dev/tty12": true, "/dev/ttyS0": false, "/dev/ttyUSB0": false,
		"/dev/tty": false, "/dev/console": false, "/dev/hvc0": false} {
		if got := IsPanelConsole(name); got != want {
			t.Errorf("IsPanelConsole(%q) = %v", name, got)
		}
	}
}

func TestAskPassword(t *testing.T) {
	hash, err := passwd.Hash("open sesame", []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for typed, want := range map[string]bool{"open sesame\n": true, "open sesame\r\n": true, "open\n": false, "\n": false} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, r) // the prompt
		ok, err := askPassword(w, bufio.NewReader(strings.NewReader(typed)), hash)
		w.Close()
		r.Close()
		if err != nil || ok != want {
			t.Errorf("typed %q: %v, %v; want %v", typed, ok, err, want)
		}
	}
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	go io.Copy(io.Discard, r)
	if _, err := askPassword(w, bufio.NewReader(strings.NewReader("no newline")), hash); err == nil {
		t.Error("a console closed before Enter gives no error")
	}
}
