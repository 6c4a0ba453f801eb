package procnet

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

func TestParseListeners(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:01BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:2124 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0F02000A:01BD 0202000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 00000000:01BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
`
	got := ParseListeners(bufio.NewScanner(strings.NewReader(tcp)), 445)
	if strings.Join(got, " ") != "127.0.0.1:445 0.0.0.0:445" {
		t.Errorf("listeners = %q", got)
	}
	tcp6 := `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:01BD 00000000000000000000000000000000:0000 0A 0
`
	got = ParseListeners(bufio.NewScanner(strings.NewReader(tcp6)), 445)
	if strings.Join(got, " ") != "[::1]:445" {
		t.Errorf("listeners6 = %q", got)
	}
}

// TestListeners: a socket listening here is found on its port, and a
// port nobody listens on is not.
func TestListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	want := fmt.Sprintf("127.0.0.1:%d", port)
	if got := Listeners(port); len(got) != 1 || got[0] != want {
		t.Errorf("Listeners(%d) = %q, want [%s]", port, got, want)
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if got := ParseListeners(bufio.NewScanner(f), port); len(got) != 1 || got[0] != want {
		t.Errorf("/proc/net/tcp: %q, want [%s]", got, want)
	}
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err == nil {
		defer ln6.Close()
		p6 := ln6.Addr().(*net.TCPAddr).Port
		if got := Listeners(p6); len(got) != 1 || got[0] != fmt.Sprintf("[::1]:%d", p6) {
			t.Errorf("Listeners(%d) = %q", p6, got)
		}
	}
	ln.Close()
	if got := Listeners(port); len(got) != 0 {
		t.Errorf("Listeners(%d) after close = %q", port, got)
	}
}
