package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestDataErrors: when the kernel finds an error in the data partition's
// filesystem (made here through ext4's own trigger_fs_error), hostd says
// so on the console and in the health (ctl status) and flushes what is
// written; the share goes on; the next boot's e2fsck repairs the
// partition, the health is ok again, and a file written a moment before
// the error and one written after it are both there. (With
// errors=remount-ro, the first was lost: the kernel aborts the journal.)
func TestDataErrors(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	testenv.NeedTool(t, "smbclient")
	const password = "data-errors-test"
	dir := t.TempDir()
	img := filepath.Join(dir, "errors.img")
	if stdout, stderr, code := runCLI(t, append([]string{"build", filepath.Join(testenv.RepoRoot(), "examples", "qemu-test.hcl"), "-o", img,
		"-var", "guest_autostart=false", "-var", "share_password=" + password, "--lock", testCache(t)}, bareGuest(t)...)...); code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	plain := filepath.Join(dir, "plain.txt")
	os.WriteFile(plain, []byte("written before the error\n"), 0o644)

	h, sh := startShellHost(t, qemu.Config{Image: img, MemoryMiB: 1024}, 445)
	h.waitReady(t)
	if out, err := h.smbclient(t, "files", "thin", password, nil, "put "+plain+" before.txt"); err != nil {
		t.Fatalf("put before the error: %v\n%s", err, out)
	}
	// The shell first (the first Enter starts it), then the error.
	sh.run(t, "echo shell-$((6*7))", "shell-42")
	sh.run(t, "echo 1 > /sys/fs/ext4/vda4/trigger_fs_error; echo trigger-$((6*7))", "trigger-42")
	select {
	case <-h.con.Await("thinhost: kernel: the data partition (vda4) has an error (EXT4-fs error: trigger_test_error"):
	case <-time.After(time.Minute):
		t.Fatalf("hostd did not say the data partition has an error:\n%s", h.tail())
	}
	st := h.ctl(t, "status")
	if !strings.Contains(st, "health    DEGRADED") || !strings.Contains(st, "the data partition (vda4) has an error (EXT4-fs error: trigger_test_error") ||
		!strings.Contains(st, "restart the host soon") {
		t.Errorf("ctl status after the error:\n%s", st)
	}
	if out, err := h.smbclient(t, "files", "thin", password, nil, "put "+plain+" after.txt"); err != nil {
		t.Errorf("put after the error: %v\n%s", err, out)
	}
	// The partition still takes writes, so it unmounts cleanly; the
	// shell's `hostd poweroff` asks through the API's socket.
	sh.typeLine("hostd poweroff")
	h.awaitPowerOff(t)
	if !h.con.Seen(`msg="powering off" svc=hostd reason="API poweroff"`) {
		t.Errorf("hostd poweroff did not go through the API:\n%s", h.tail())
	}

	h = bootHost(t, img, 1024, 445)
	if !h.con.Seen("repaired this boot") || h.con.Seen("thinhost: kernel:") {
		t.Errorf("the next boot did not repair the data partition, or still finds it wrong:\n%s", h.tail())
	}
	if st := h.ctl(t, "status"); !strings.Contains(st, "health    ok") {
		t.Errorf("ctl status after the repair:\n%s", st)
	}
	for _, name := range []string{"before.txt", "after.txt"} {
		back := filepath.Join(dir, name+".back")
		if out, err := h.smbclient(t, "files", "thin", password, nil, "get "+name+" "+back); err != nil {
			t.Errorf("get %s after the repair: %v\n%s", name, err, out)
		} else if b, _ := os.ReadFile(back); string(b) != "written before the error\n" {
			t.Errorf("%s reads %q after the repair:\n%s", name, b, out)
		}
	}
	h.powerOff(t)
}
