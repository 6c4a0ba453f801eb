package hostd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
)

// dhclientPath is u-root's DHCP client in the image; by default it
// configures every wired interface (names starting with "e").
const dhclientPath = "/bbin/dhclient"

// startNetwork configures the wired interfaces with DHCP in the
// background — the host is ready without a network — and prints the
// addresses it got on the console.
func startNetwork(ctx context.Context, log *slog.Logger, console io.Writer) {
	go func() {
		out, err := exec.CommandContext(ctx, dhclientPath, "-ipv6=false", "-timeout", "10", "-retry", "3").CombinedOutput()
		if err != nil {
			log.Warn("dhcp", "err", err, "output", strings.TrimSpace(string(out)))
		}
		addrs := wiredAddresses()
		if len(addrs) == 0 {
			fmt.Fprintln(console, "thinhost: network: no wired interface got an address by DHCP")
			return
		}
		fmt.Fprintln(console, "thinhost: network "+strings.Join(addrs, ", "))
	}()
}

// wiredAddresses lists "name addr/prefix" for the IPv4 addresses of
// interfaces whose names start with "e".
func wiredAddresses() []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, ifc := range ifs {
		if !strings.HasPrefix(ifc.Name, "e") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				out = append(out, ifc.Name+" "+n.String())
			}
		}
	}
	return out
}
