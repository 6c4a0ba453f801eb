package qemu

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConsole(t *testing.T) {
	c := NewConsole(3, "thinhost: hostd ready")
	c.Write([]byte("line 1\r\nline 2\nhalf"))
	select {
	case <-c.Ready():
		t.Fatal("ready too early")
	default:
	}
	c.Write([]byte(" done\n[  1.0] thinhost: hostd ready\nlast"))
	select {
	case <-c.Ready():
	default:
		t.Fatal("ready line not seen")
	}
	if got, want := c.Tail(), []string{"half done", "[  1.0] thinhost: hostd ready", "last"}; !cmp.Equal(got, want) {
		t.Errorf("Tail = %q, want %q", got, want)
	}
	if !c.Seen("line 1") || c.Seen("line 3") {
		t.Error("Seen")
	}
	// The marker is matched once; more output does not panic.
	c.Write([]byte("\nthinhost: hostd ready\n"))
}

// TestConsoleAwait: --wait-for sees a text in a line written before or
// after the wait began, split across writes, and never a text not yet
// written.
func TestConsoleAwait(t *testing.T) {
	c := NewConsole(10, "ready")
	c.Write([]byte("boot\nthinhost-guest: u"))
	up := c.Await("thinhost-guest: up")
	key := c.Await("key 28")
	c.Write([]byte("p\n"))
	select {
	case <-up:
	default:
		t.Fatal("a line finished after Await was not seen")
	}
	select {
	case <-key:
		t.Fatal("a text never written was seen")
	default:
	}
	select {
	case <-c.Await("boot"):
	default:
		t.Fatal("a line written before Await was not seen")
	}
	c.Write([]byte("msg=\"thinhost-guest: key 28\"\n"))
	select {
	case <-key:
	default:
		t.Fatal("key 28 not seen")
	}
	// shim's error box: cursor moves, no newline, then it waits for a key.
	refused := c.Await("Security Violation")
	c.Write([]byte("\x1b[02;01H|  ERROR  |\x1b[03;01H| Verification failed: (0x1A) Security Vio"))
	c.Write([]byte("lation |\x1b[04;01H"))
	select {
	case <-refused:
	default:
		t.Fatal("text in a line that never ends was not seen")
	}
}
