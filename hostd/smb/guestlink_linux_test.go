package smb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/guestlink"
	"github.com/thinhost/thinhost/hostd/supervise"
	"github.com/thinhost/thinhost/hostd/vm"
	"github.com/thinhost/thinhost/images/layout/config"
	"github.com/thinhost/thinhost/internal/testenv"
	"github.com/thinhost/thinhost/internal/testguest"
)

// TestGuestLinkShare is the share path from inside a guest, in a network
// namespace of its own: hostd's host-only link (bridge, tap, DHCP), smbd
// with the smb.conf hostd renders for it, and the Linux test guest under
// real QEMU with the tap as its second NIC. The guest gets its address by
// DHCP, mounts the share with the kernel's SMB3 client at the host's link
// address and writes a file; snapshot; it writes another; reset: its disk
// has lost the second boot's write, and both files are still on the share,
// as the guest lists them and as the host reads them.
func TestGuestLinkShare(t *testing.T) {
	testenv.NeedE2E(t) // real QEMU, smbd and a network namespace
	// The test guest is fetched and built here, where the network is;
	// the namespace has none.
	if !testenv.InNetNS(t, func() []string {
		kernel, initrd := testguest.ForTest(t)
		return []string{"THINHOST_TEST_GUEST_KERNEL=" + kernel, "THINHOST_TEST_GUEST_INITRD=" + initrd}
	}) {
		return
	}
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "qemu-img")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	link, err := guestlink.Setup(log, []string{"guest"})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	const user, password = "thin", "link-test-password"
	fs := &config.FileServer{User: user, Shares: []config.Share{{Name: "files", Path: "files"}}}
	_, port, shares := serveRenderedLink(t, fs, password, &net.IPNet{IP: link.Host, Mask: link.Net.Mask})

	ctx := context.Background()
	kernel, initrd := os.Getenv("THINHOST_TEST_GUEST_KERNEL"), os.Getenv("THINHOST_TEST_GUEST_INITRD")
	share := fmt.Sprintf("//%s/files,%s,%s,%d", link.Host, user, password, port)
	spec := config.VM{Name: "guest", OS: "linux", MemoryBytes: 512 << 20, CPUs: 1, Firmware: "bios",
		DiskSize: 256 << 20, DiskFormat: "qcow2", Kernel: kernel, Initrd: initrd,
		Cmdline: testguest.Cmdline + " thinhost-guest-share=" + share, Display: "none", Network: "user", ShutdownTimeout: 60}
	// bench/guest.sh: the guest also times its writes (disk, link, NAT).
	if mib := os.Getenv("THINHOST_BENCH_GUEST_MIB"); mib != "" {
		spec.Cmdline += " thinhost-guest-bench=" + mib
	}
	var out testenv.Lines
	dir := t.TempDir()
	m := vm.NewManager(&vm.Manager{
		Log: log, Sup: supervise.New(log, func(l supervise.Line) { out.Add(l.Text) }), Host: vm.Host{MemBytes: 4 << 30, CPUs: 2},
		Program:  func(p string, a ...string) (string, []string) { return p, a },
		Env:      os.Environ(),
		StateDir: filepath.Join(dir, "vms"), RunDir: filepath.Join(dir, "run"),
		Link: link.Tap,
	}, []config.VM{spec})
	defer m.StopAll()

	if err := m.Start(ctx, "guest"); err != nil {
		t.Fatal(err)
	}
	out.Wait(t, "dhcp eth", 1, 2*time.Minute)
	out.Wait(t, "share wrote=boot-1.txt", 1, 2*time.Minute)
	if out.Count("10.0.3.10/24") == 0 {
		t.Errorf("the guest did not get its link address 10.0.3.10 by DHCP:\n%s", out.String())
	}
	// Snapshot: the guest shuts down, starts on the overlay, writes its
	// boot 2 on its disk and boot-2.txt on the share.
	if err := m.Snapshot(ctx, "guest", false); err != nil {
		t.Fatal(err)
	}
	out.Wait(t, "share wrote=boot-2.txt", 1, 3*time.Minute)
	// Reset: boot 2's disk write is gone, its file on the share is not.
	if err := m.Reset(ctx, "guest"); err != nil {
		t.Fatal(err)
	}
	out.Wait(t, "found=boot-1", 2, 3*time.Minute)
	out.Wait(t, "share before=boot-1.txt,boot-2.txt", 1, 2*time.Minute)
	// (This boot writes its own boot-2.txt again: read once it has.)
	out.Wait(t, "share wrote=boot-2.txt", 2, time.Minute)
	if n := out.Count("found=boot-2"); n != 0 {
		t.Errorf("after reset the guest's disk still had boot 2's write")
	}
	// The host reads both, as written by the guest: from the folder, and
	// through smbclient at the link's address.
	smbclient := testenv.NeedTool(t, "smbclient")
	for i := 1; i <= 2; i++ {
		name, want := fmt.Sprintf("boot-%d.txt", i), fmt.Sprintf("written by the guest at boot %d", i)
		b, err := os.ReadFile(filepath.Join(shares, "files", name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s on the host: %q %v", name, b, err)
		}
		out, err := exec.Command(smbclient, fmt.Sprintf("//%s/files", link.Host), "-p", fmt.Sprint(port),
			"-U", user+"%"+password, "-c", "get "+name+" -").CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("smbclient get %s: %v\n%s", name, err, out)
		}
	}
	if os.Getenv("THINHOST_BENCH_GUEST_MIB") != "" {
		out.Wait(t, "thinhost-guest: bench ", 1, 5*time.Minute)
	}
	re := regexp.MustCompile(`thinhost-guest: (share before=|bench ).*`)
	for _, l := range re.FindAllString(out.String(), -1) {
		t.Log(l)
	}
}
