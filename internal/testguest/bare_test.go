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

	"github.com/thinhost/thinhost/internal/testenv"
)

// TestBare boots the bare test guest in QEMU (q35, standard VGA, as hostd
// runs a display = "sdl" guest): it says up, paints the pattern the
// laptop test reads, reports the keys QMP types in Linux key codes,
// Ctrl+Alt+Del included, and powers off on the power button.
func TestBare(t *testing.T) {
	qemu := testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bare.elf")
	if err := BuildBare(context.Background(), testenv.RepoRoot(), kernel); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35", "-accel", "tcg", "-m", "64", "-nodefaults",
		"-vga", "std", "-display", "none", "-kernel", kernel, "-serial", "stdio",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var seen []string
	await := func(want string) {
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
	await(fmt.Sprintf("screen: painting %dx%d", BareWidth, BareHeight))

	var qmp net.Conn
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
	do("system_powerdown", map[string]any{})
	await("power button: powering off")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("QEMU after the guest powered off: %v", err)
	}
}

// checkPPM reads QEMU's screendump (binary PPM): the upper half
// PatternTop, the lower half PatternBottom.
func checkPPM(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var w, h, max int
	n, err := fmt.Sscanf(string(b), "P6\n%d %d\n%d\n", &w, &h, &max)
	if n != 3 || err != nil {
		t.Fatalf("screendump %s: not a PPM: %v", path, err)
	}
	pix := b[len(b)-w*h*3:]
	if w != BareWidth || h != BareHeight {
		t.Errorf("screen is %dx%d, want %dx%d", w, h, BareWidth, BareHeight)
	}
	at := func(x, y int) [3]byte {
		i := (y*w + x) * 3
		return [3]byte{pix[i], pix[i+1], pix[i+2]}
	}
	for _, p := range [][2]int{{0, 0}, {w - 1, h/2 - 1}, {w / 2, h / 4}} {
		if c := at(p[0], p[1]); c != PatternTop {
			t.Errorf("pixel %v is %x, want %x", p, c, PatternTop)
		}
	}
	for _, p := range [][2]int{{0, h / 2}, {w - 1, h - 1}, {w / 2, 3 * h / 4}} {
		if c := at(p[0], p[1]); c != PatternBottom {
			t.Errorf("pixel %v is %x, want %x", p, c, PatternBottom)
		}
	}
}
