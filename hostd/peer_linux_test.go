package hostd

import (
	"net"
	"net/netip"
	"os"
	"testing"
)

// TestConnOwner finds the process holding a connection's client end: a
// real loopback connection made by this test process.
func TestConnOwner(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := netip.MustParseAddrPort(s.RemoteAddr().String())
	server := netip.MustParseAddrPort(s.LocalAddr().String())
	if got := connOwner("/proc", client, server, map[int]string{1: "init", os.Getpid(): "guest"}); got != "guest" {
		t.Errorf("the connection's owner: %q, want guest", got)
	}
	if got := connOwner("/proc", client, server, map[int]string{1: "init"}); got != "" {
		t.Errorf("owner among processes that do not hold it: %q", got)
	}
	if got := connOwner("/proc", client, netip.MustParseAddrPort("127.0.0.1:1"), map[int]string{os.Getpid(): "guest"}); got != "" {
		t.Errorf("a connection to another port is not this one, got %q", got)
	}
}
