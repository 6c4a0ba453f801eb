// Command guestinit is the init of thinhost's test guest: a tiny Linux
// guest that hostd runs in the end-to-end tests. It loads the virtio and
// power-button modules shipped beside it, reports the Secure Boot
// certificates of its UEFI variables (booted by UEFI firmware), what the first sector of
// its disk holds, writes the next boot number there, and powers off when
// the ACPI power button is pressed. With a screen, it paints a known
// pattern (testguest.PatternTop over PatternBottom) and reports every key
// pressed on its keyboard ("key 28"). Like a desktop OS it keeps
// Ctrl+Alt+Del for itself: it reports it ("ctrl-alt-del") instead of the
// kernel restarting the guest.
package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	disk   = "/dev/vda"
	magic  = "THINHOST-GUEST boot-"
	prefix = "thinhost-guest: "
)

func say(format string, a ...any) { fmt.Printf(prefix+format+"\n", a...) }

func main() {
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = unix.Mount("proc", "/proc", "proc", 0, "")
	_ = unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	if order, err := os.ReadFile("/modules/order"); err == nil {
		_, uefi := os.Stat("/sys/firmware/efi")
		for _, m := range strings.Fields(string(order)) {
			if strings.HasPrefix(m, "efivarfs.") && uefi != nil {
				continue // booted by a BIOS: no variables to read
			}
			if err := insmod(filepath.Join("/modules", m)); err != nil {
				say("load %s: %v", m, err)
			}
		}
	}
	// Listen for the power button before saying "up", so a shutdown
	// asked for right after that line is not lost.
	for i := 0; i < 40; i++ {
		if p, _ := filepath.Glob("/dev/input/event*"); len(p) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	go watchPowerButton()
	// With CAD off the kernel sends SIGINT to init on Ctrl+Alt+Del.
	cad := make(chan os.Signal, 1)
	signal.Notify(cad, unix.SIGINT)
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		say("ctrl-alt-del: %v", err)
	}
	go func() {
		for range cad {
			say("ctrl-alt-del")
		}
	}()
	time.Sleep(100 * time.Millisecond)
	say("up")
	reportSecureBoot()
	go paint()
	boot, err := bootCount()
	if err != nil {
		say("disk: %v", err)
	}
	if share := cmdlineArg("thinhost-guest-share"); share != "" && boot > 0 {
		shareTest(share, boot)
	}
	for {
		time.Sleep(time.Hour)
	}
}

func insmod(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// bootCount reads the boot number in the disk's first sector, says it,
// and writes the next one, which it returns.
func bootCount() (int, error) {
	var f *os.File
	var err error
	for i := 0; i < 200; i++ {
		if f, err = os.OpenFile(disk, os.O_RDWR, 0); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sector := make([]byte, 512)
	if _, err := f.ReadAt(sector, 0); err != nil {
		return 0, err
	}
	n := 0
	found := "none"
	if rest, ok := bytes.CutPrefix(sector, []byte(magic)); ok {
		end := bytes.IndexByte(rest, '\n')
		if end > 0 {
			if v, err := strconv.Atoi(string(rest[:end])); err == nil {
				n, found = v, "boot-"+string(rest[:end])
			}
		}
	}
	say("found=%s", found)
	next := fmt.Sprintf("%s%d\n", magic, n+1)
	copy(sector, make([]byte, 512))
	copy(sector, next)
	if _, err := f.WriteAt(sector, 0); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	say("wrote=boot-%d", n+1)
	return n + 1, nil
}

// watchPowerButton powers off on KEY_POWER from any input device (the
// ACPI power button that QEMU's system_powerdown presses).
func watchPowerButton() {
	seen := map[string]bool{}
	for {
		paths, _ := filepath.Glob("/dev/input/event*")
		for _, p := range paths {
			if !seen[p] {
				seen[p] = true
				go readEvents(p)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readEvents(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	// struct input_event on 64-bit: timeval (16), type u16, code u16, value s32.
	ev := make([]byte, 24)
	for {
		if _, err := f.Read(ev); err != nil {
			return
		}
		typ := binary.LittleEndian.Uint16(ev[16:])
		code := binary.LittleEndian.Uint16(ev[18:])
		value := int32(binary.LittleEndian.Uint32(ev[20:]))
		if typ == 1 && code == 116 && value == 1 { // EV_KEY, KEY_POWER, press
			say("power button: powering off")
			unix.Sync()
			_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		}
		if typ == 1 && value == 1 && code != 116 {
			say("key %d", code)
		}
	}
}

// Pattern colours (testguest.PatternTop and PatternBottom).
var top, bottom = [3]byte{0x20, 0xC0, 0x60}, [3]byte{0xC0, 0x20, 0xA0}

// paint fills the framebuffer, when there is one, with the pattern: the
// upper half top, the lower half bottom; again every two seconds, over
// whatever the kernel's console drew.
func paint() {
	var f *os.File
	var err error
	for i := 0; i < 100; i++ {
		if f, err = os.OpenFile("/dev/fb0", os.O_RDWR, 0); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return // no screen
	}
	defer f.Close()
	// The console's cursor and text off the framebuffer.
	_ = os.WriteFile("/sys/class/vtconsole/vtcon1/bind", []byte("0"), 0)
	// struct fb_var_screeninfo: xres, yres, xres_virtual, yres_virtual,
	// xoffset, yoffset, bits_per_pixel (u32 each) ...; struct
	// fb_fix_screeninfo: id[16], smem_start (u64), smem_len, type,
	// type_aux, visual (u32), xpanstep, ypanstep, ywrapstep (u16),
	// line_length (u32) ...
	var vinfo [160]byte
	var finfo [80]byte
	if err := ioctl(f, 0x4600, vinfo[:]); err != nil { // FBIOGET_VSCREENINFO
		say("screen: %v", err)
		return
	}
	if err := ioctl(f, 0x4602, finfo[:]); err != nil { // FBIOGET_FSCREENINFO
		say("screen: %v", err)
		return
	}
	w, h := binary.LittleEndian.Uint32(vinfo[0:]), binary.LittleEndian.Uint32(vinfo[4:])
	bpp := binary.LittleEndian.Uint32(vinfo[24:])
	stride := binary.LittleEndian.Uint32(finfo[48:])
	if bpp != 32 || w == 0 || h == 0 || stride < 4*w {
		say("screen: %dx%d at %d bits per pixel: not painted", w, h, bpp)
		return
	}
	frame := make([]byte, int(stride)*int(h))
	for y := uint32(0); y < h; y++ {
		c := top
		if y >= h/2 {
			c = bottom
		}
		row := frame[y*stride:]
		for x := uint32(0); x < w; x++ {
			// XRGB8888, little-endian: blue, green, red, unused.
			row[4*x], row[4*x+1], row[4*x+2] = c[2], c[1], c[0]
		}
	}
	say("screen: painting %dx%d", w, h)
	for {
		if _, err := f.WriteAt(frame, 0); err != nil {
			say("screen: %v", err)
			return
		}
		time.Sleep(2 * time.Second)
	}
}

func ioctl(f *os.File, req uintptr, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// reportSecureBoot prints the subjects of the X.509 certificates in the
// firmware's KEK and db ("secure boot KEK: CN; CN"), read through
// efivarfs, when the guest was booted by UEFI firmware.
func reportSecureBoot() {
	if _, err := os.Stat("/sys/firmware/efi"); err != nil {
		return
	}
	dir := "/sys/firmware/efi/efivars"
	if err := unix.Mount("efivarfs", dir, "efivarfs", unix.MS_RDONLY, ""); err != nil {
		say("efivarfs: %v", err)
		return
	}
	for _, v := range []struct{ name, file string }{
		{"KEK", "KEK-8be4df61-93ca-11d2-aa0d-00e098032b8c"},
		{"db", "db-d719b2cb-3d3a-4596-a3bc-dad00e67656f"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, v.file))
		if err != nil || len(b) < 4 {
			say("secure boot %s: %v", v.name, err)
			continue
		}
		say("secure boot %s: %s", v.name, strings.Join(certSubjects(b[4:]), "; "))
	}
}

// x509GUID is EFI_CERT_X509_GUID as it is stored (little-endian fields).
var x509GUID = []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}

// certSubjects walks EFI signature lists and names the X.509
// certificates' common names.
func certSubjects(b []byte) []string {
	var out []string
	for len(b) >= 28 {
		listSize := int(binary.LittleEndian.Uint32(b[16:20]))
		hdrSize := int(binary.LittleEndian.Uint32(b[20:24]))
		sigSize := int(binary.LittleEndian.Uint32(b[24:28]))
		if listSize < 28 || listSize > len(b) || sigSize < 16 || 28+hdrSize > listSize {
			return append(out, "(bad signature list)")
		}
		if bytes.Equal(b[:16], x509GUID) {
			for p := 28 + hdrSize; p+sigSize <= listSize; p += sigSize {
				c, err := x509.ParseCertificate(b[p+16 : p+sigSize])
				if err != nil {
					out = append(out, "(bad certificate)")
					continue
				}
				out = append(out, c.Subject.CommonName)
			}
		}
		b = b[listSize:]
	}
	return out
}

// cmdlineArg is the value of name=VALUE on the kernel's command line.
func cmdlineArg(name string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// shareTest mounts the host's share with the kernel's SMB3 client and
// writes this boot's file there: share is //HOST/SHARE,USER,PASSWORD[,PORT].
// The guest's NICs get their addresses by DHCP first (the host-only link's
// server answers one of them). It reports the files the share holds before
// it writes ("share before=boot-1.txt,boot-2.txt"), then its own
// ("share wrote=boot-3.txt").
func shareTest(share string, boot int) {
	parts := strings.Split(share, ",")
	if len(parts) < 3 || len(parts) > 4 {
		say("share: want //HOST/SHARE,USER,PASSWORD[,PORT], got %q", share)
		return
	}
	unc, user, pass := parts[0], parts[1], parts[2]
	port := "445"
	if len(parts) == 4 {
		port = parts[3]
	}
	if err := dhcpAll(); err != nil {
		say("share: dhcp: %v", err)
	}
	mnt := "/mnt"
	_ = os.MkdirAll(mnt, 0o755)
	host := strings.Split(strings.TrimPrefix(unc, "//"), "/")[0]
	opts := "vers=3.1.1,username=" + user + ",password=" + pass + ",ip=" + host + ",port=" + port + ",uid=0,gid=0,cache=strict"
	var err error
	for i := 0; i < 30; i++ {
		if err = unix.Mount(unc, mnt, "cifs", 0, opts); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		say("share: mount %s: %v", unc, err)
		return
	}
	defer unix.Unmount(mnt, 0)
	say("share before=%s", strings.Join(bootFiles(mnt), ","))
	name := fmt.Sprintf("boot-%d.txt", boot)
	if err := os.WriteFile(filepath.Join(mnt, name), []byte(fmt.Sprintf("written by the guest at boot %d\n", boot)), 0o644); err != nil {
		say("share: write %s: %v", name, err)
		return
	}
	say("share wrote=%s", name)
	if bench := cmdlineArg("thinhost-guest-bench"); bench != "" {
		benchWrites(mnt, bench, unc, user, pass, port)
	}
}

// bootFiles lists the boot-N.txt files in dir.
func bootFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "boot-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// dhcpAll brings every ethernet interface up and configures it by DHCP,
// in parallel; it fails when none got an address.
func dhcpAll() error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result)
	n := 0
	for _, l := range links {
		if l.Type() != "device" || l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		n++
		go func(l netlink.Link) {
			results <- result{l.Attrs().Name, dhcp(l)}
		}(l)
	}
	got := 0
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			say("dhcp %s: %v", r.name, r.err)
			continue
		}
		got++
	}
	if got == 0 {
		return fmt.Errorf("no interface got an address (%d tried)", n)
	}
	return nil
}

func dhcp(l netlink.Link) error {
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	c, err := nclient4.New(l.Attrs().Name, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(5))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	lease, err := c.Request(ctx)
	if err != nil {
		return err
	}
	ack := lease.ACK
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ack.YourIPAddr, Mask: ack.SubnetMask()}}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return err
	}
	if r := ack.Router(); len(r) > 0 {
		_ = netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: r[0]})
	}
	say("dhcp %s %s", l.Attrs().Name, addr.IPNet)
	return nil
}

// benchWrites times writing mib MiB, flushed at the end, to the share
// through the host-only link (mounted at linkMnt), to the guest's own disk
// (after its first MiB), and to the same share through QEMU's NAT
// (10.0.2.2), and reports MB/s for each: "bench 64MiB disk=... link=...
// nat=...".
func benchWrites(linkMnt, mibArg, unc, user, pass, port string) {
	mib, err := strconv.Atoi(mibArg)
	if err != nil || mib < 1 || mib > 4096 {
		say("bench: size %q", mibArg)
		return
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	timed := func(f *os.File, off int64) (float64, error) {
		start := time.Now()
		for i := 0; i < mib; i++ {
			if _, err := f.WriteAt(buf, off+int64(i)<<20); err != nil {
				return 0, err
			}
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		return float64(mib) * (1 << 20) / 1e6 / time.Since(start).Seconds(), nil
	}
	file := func(dir string) (float64, error) {
		f, err := os.Create(filepath.Join(dir, "bench.bin"))
		if err != nil {
			return 0, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		return timed(f, 0)
	}
	var parts []string
	if f, err := os.OpenFile(disk, os.O_RDWR, 0); err == nil {
		r, err := timed(f, 1<<20)
		f.Close()
		parts = append(parts, benchPart("disk", r, err))
	}
	r, err := file(linkMnt)
	parts = append(parts, benchPart("link", r, err))
	// The same share through QEMU's NAT, where the host's loopback smbd
	// answers.
	nat := "/mnt-nat"
	_ = os.MkdirAll(nat, 0o755)
	natUNC := "//10.0.2.2/" + unc[strings.LastIndex(unc, "/")+1:]
	if err := unix.Mount(natUNC, nat, "cifs", 0, "vers=3.1.1,username="+user+",password="+pass+",ip=10.0.2.2,port="+port+",cache=strict"); err != nil {
		parts = append(parts, benchPart("nat", 0, err))
	} else {
		r, err := file(nat)
		parts = append(parts, benchPart("nat", r, err))
		_ = unix.Unmount(nat, 0)
	}
	say("bench %dMiB %s", mib, strings.Join(parts, " "))
}

func benchPart(name string, mbps float64, err error) string {
	if err != nil {
		return fmt.Sprintf("%s=error(%v)", name, strings.ReplaceAll(err.Error(), " ", "_"))
	}
	return fmt.Sprintf("%s=%.1fMB/s", name, mbps)
}
