package qga

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startAgent runs this machine's qemu-ga listening on a socket, as the
// agent in a guest listens on its virtio port.
func startAgent(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("qemu-ga")
	if err != nil {
		t.Skip("no qemu-ga (apt-get install qemu-guest-agent; examples/setup-debian.sh does)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "qga.sock")
	// guest-set-time would set this machine's clock: blocked.
	cmd := exec.Command(bin, "-m", "unix-listen", "-p", sock, "-t", dir, "-f", filepath.Join(dir, "pid"), "-b", "guest-set-time")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("qemu-ga made no socket")
	return ""
}

// TestAgent runs the client against the real qemu-ga: sync, ping, a file
// that is there and one that is not, and a blocked command's error.
func TestAgent(t *testing.T) {
	sock := startAgent(t)
	c, err := Dial(sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "installed")
	if ok, err := c.Exists(marker); ok || err != nil {
		t.Errorf("a missing file: %v %v", ok, err)
	}
	if err := os.WriteFile(marker, []byte("done\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Exists(marker); !ok || err != nil {
		t.Errorf("the marker: %v %v", ok, err)
	}
	var ae *Error
	if err := c.SetTime(time.Now()); !errors.As(err, &ae) {
		t.Errorf("a blocked command: %v", err)
	}
	// A second client after the first: the channel is synchronised again.
	c.Close()
	c2, err := Dial(sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Ping(); err != nil {
		t.Fatal(err)
	}
}

// TestStaleReply: a reply left in the channel by an earlier client is
// skipped by the sync, not taken as the answer.
func TestStaleReply(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		// Stale: half a reply, a full one, then the agent's answer to
		// the sync (whatever its id) after 0xFF.
		_, _ = conn.Write([]byte(`{"return": {"half`))
		// The client's 0xFF and its sync may come in two reads.
		buf := make([]byte, 512)
		n := 0
		for n < len(buf) && !bytes.Contains(buf[:n], []byte("\n")) {
			m, err := conn.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
		}
		var id string
		if i := bytes.Index(buf[:n], []byte(`"id":`)); i >= 0 {
			j := i + 5
			for j < n && buf[j] >= '0' && buf[j] <= '9' {
				j++
			}
			id = string(buf[i+5 : j])
		}
		_, _ = conn.Write([]byte("\n{\"return\": 7}\n\xff{\"return\": " + id + "}\n"))
		n, _ = conn.Read(buf)
		if bytes.Contains(buf[:n], []byte("guest-ping")) {
			_, _ = conn.Write([]byte("{\"return\": {}}\n"))
		}
		time.Sleep(time.Second)
	}()
	c, err := Dial(sock, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
}

// TestNoAgent: a channel nobody answers on is ErrNoAgent, in time.
func TestNoAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err == nil {
			defer conn.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	if _, err := Dial(sock, 300*time.Millisecond); !errors.Is(err, ErrNoAgent) {
		t.Errorf("Dial = %v, want ErrNoAgent", err)
	}
}
