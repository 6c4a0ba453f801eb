package testguest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestBare boots the bare test guest in QEMU (q35, standard VGA, a
// virtio-blk disk, as hostd runs a display = "sdl" guest): it counts its
// boot on the disk, paints the pattern the laptop test reads, reports the
// keys QMP types in Linux key codes, Ctrl+Alt+Del included, says when a
// USB device arrives on and leaves its xHCI controller, and powers off on
// the power button; booted again, it finds the count it wrote.
func TestBare(t *testing.T) {
	testenv.NeedE2E(t) // real QEMU: the full suite's
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bare.elf")
	if err := BuildBare(context.Background(), testenv.RepoRoot(), kernel); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	stick := filepath.Join(dir, "stick.raw")
	if err := os.WriteFile(stick, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	cmd, await := bootBare(t, kernel, disk, "-vga", "std", "-qmp", "unix:"+sock+",server=on,wait=off",
		"-device", "qemu-xhci,id=xhci", "-drive", "if=none,id=stick,format=raw,file="+stick)
	await("found=none")
	await("wrote=boot-1")
	await(fmt.Sprintf("screen: painting %dx%d", BareWidth, BareHeight))
	await("usb: 8 ports, devices on ports: none")

	var qmp net.Conn
	var err error
	for qmp == nil {
		if qmp, err = net.Dial("unix", sock); err != nil {
			qmp = nil
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer qmp.Close()
	rd := bufio.NewReader(qmp)
	do := func(command string, args any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"execute": command, "arguments": args})
		if _, err := qmp.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", command, err)
			}
			if strings.Contains(l, `"error"`) {
				t.Fatalf("%s: %s", command, l)
			}
			if strings.Contains(l, `"return"`) {
				return
			}
		}
	}
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	do("qmp_capabilities", map[string]any{})
	shot := filepath.Join(dir, "screen.ppm")
	do("screendump", map[string]any{"filename": shot})
	checkPPM(t, shot)
	keys := func(k ...string) any {
		var ks []map[string]string
		for _, q := range k {
			ks = append(ks, map[string]string{"type": "qcode", "data": q})
		}
		return map[string]any{"keys": ks}
	}
	do("send-key", keys("a"))
	await("key 30")
	do("send-key", keys("ret"))
	await("key 28")
	do("send-key", keys("ctrl", "alt", "delete"))
	await("key 111")
	await("ctrl-alt-del")
	// A USB stick plugged in and pulled out, as hostd does for a guest.
	do("device_add", map[string]any{"driver": "usb-storage", "bus": "xhci.0", "drive": "stick", "id": "stick0"})
	await("usb port 1: device connected, speed 4") // SuperSpeed: QEMU's usb-storage on the first port, a USB 3 one
	do("device_del", map[string]any{"id": "stick0"})
	await("usb port 1: device disconnected")
	do("system_powerdown", map[string]any{})
	await("power button: powering off")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("QEMU after the guest powered off: %v", err)
	}

	// The second boot finds the first one's count; without a screen it
	// says so.
	cmd, await = bootBare(t, kernel, disk, "-vga", "none")
	await("found=boot-1")
	await("wrote=boot-2")
	await("screen: none")
	cmd.Process.Kill()
	cmd.Wait()
}

// bootBare starts QEMU on the bare test guest with disk as its virtio-blk
// disk; await waits for one of its console lines (without the marker).
func bootBare(t *testing.T, kernel, disk string, args ...string) (*exec.Cmd, func(string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	argv := append([]string{"-machine", "q35", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none",
		"-kernel", kernel, "-serial", "stdio",
		"-drive", "if=none,id=disk0,format=raw,file=" + disk, "-device", "virtio-blk-pci,drive=disk0"}, args...)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", argv...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 64)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var seen []string
	return cmd, func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the guest ended before %q; it said %q", want, seen)
				}
				seen = append(seen, l)
				if l == Marker+want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q; the guest said %q", want, seen)
			}
		}
	}
}

// checkPPM reads QEMU's screendump: the guest's mode, its pattern.
func checkPPM(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := qemu.ReadPPM(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("screendump %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != BareWidth || b.Dy() != BareHeight {
		t.Errorf("screen is %dx%d, want %dx%d", b.Dx(), b.Dy(), BareWidth, BareHeight)
	}
	if err := PatternError(img); err != nil {
		t.Error(err)
	}
}
