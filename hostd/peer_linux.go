package hostd

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/thinhost/thinhost/internal/procnet"
)

// guestOf names the guest a request comes from: a guest's connection to
// the host (10.0.2.2 through QEMU's user networking) comes from the
// host's loopback, out of a socket its QEMU process holds. "" when it is
// no guest's (the host's own tools, or another machine with the API on
// the host's network).
func (d *Daemon) guestOf(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	if d.link != nil {
		// On the host-only link a guest is its address.
		for _, g := range d.link.Guests {
			if ip, ok := netip.AddrFromSlice(g.IP); ok && ip.Unmap() == ap.Addr().Unmap() {
				return g.Name
			}
		}
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return ""
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	server, err := netip.ParseAddrPort(la.String())
	if err != nil {
		return ""
	}
	pids := map[int]string{}
	for _, v := range d.vmStatus() {
		if v.Pid > 0 {
			pids[v.Pid] = v.Name
		}
	}
	return connOwner("/proc", ap, server, pids)
}

// connOwner finds the socket of the connection from client to server in
// the kernel's TCP tables under proc (the client's end) and returns the
// name of the process in pids that holds it, "" for none.
func connOwner(proc string, client, server netip.AddrPort, pids map[int]string) string {
	if len(pids) == 0 {
		return ""
	}
	inode := ""
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		if inode = procnet.SocketInode(filepath.Join(proc, table), client, server); inode != "" {
			break
		}
	}
	if inode == "" {
		return ""
	}
	want := "socket:[" + inode + "]"
	for pid, name := range pids {
		fds := filepath.Join(proc, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(fds)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && l == want {
				return name
			}
		}
	}
	return ""
}
