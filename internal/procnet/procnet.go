// Package procnet reads the kernel's TCP socket tables (/proc/net/tcp and
// tcp6): who listens on a port, and which socket a connection is.
package procnet

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Listeners reads the kernel's socket tables for TCP sockets listening on
// port: what is really reachable, whatever smb.conf says.
func Listeners(port int) []string {
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		out = append(out, ParseListeners(bufio.NewScanner(fh), port)...)
		fh.Close()
	}
	return out
}

// ParseListeners returns "ADDRESS:PORT" for each socket in LISTEN state on
// port, from the lines of /proc/net/tcp or /proc/net/tcp6.
func ParseListeners(sc *bufio.Scanner, port int) []string {
	var out []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		addr, p, ok := strings.Cut(f[1], ":")
		n, err := strconv.ParseUint(p, 16, 16)
		if !ok || err != nil || int(n) != port {
			continue
		}
		out = append(out, procAddr(addr)+":"+strconv.Itoa(port))
	}
	return out
}

// procAddr decodes /proc/net/tcp's hex address: IPv4 as one little-endian
// word, IPv6 as four.
func procAddr(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	if len(b) == 16 {
		return "[" + net.IP(b).String() + "]"
	}
	return net.IP(b).String()
}

// SocketInode reads a /proc/net/tcp table for the socket from local to
// remote and returns its inode ("" when absent).
func SocketInode(table string, local, remote netip.AddrPort) string {
	f, err := os.Open(table)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if AddrPort(fields[1]) != local || AddrPort(fields[2]) != remote {
			continue
		}
		if fields[9] != "0" {
			return fields[9]
		}
	}
	return ""
}

// AddrPort reads a /proc/net/tcp address ("0100007F:1F90"), an IPv4
// address mapped in IPv6 unmapped; the zero value when it cannot.
func AddrPort(s string) netip.AddrPort {
	addr, port, ok := strings.Cut(s, ":")
	p, err := strconv.ParseUint(port, 16, 16)
	if !ok || err != nil {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(strings.Trim(procAddr(addr), "[]"))
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p))
}
