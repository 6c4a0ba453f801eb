package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/testenv"
)

// TestUpdate is the A/B update's acceptance: image A boots; `ctl update`
// sends build B, which the next boot runs from slot b with the data
// partition's files intact; then an update C whose kernel cannot start
// (it panics: no init) gets one boot, and the boot after it runs B again
// by itself, the status saying the update rolled back. Both GPTs stay
// valid and the data partition is never written by an update.
func TestUpdate(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	updateFlow(t, updateChain{otherB: true})
	// The Secure Boot chains' flows are TestSecureBoot's (stock) and
	// TestOwnKeys' (own keys), on the images they build.
}

// updateChain is one boot chain for updateFlow.
type updateChain struct {
	// fw is the firmware (nil: the default); vars the profile's
	// variables.
	fw   *qemu.Firmware
	vars []string
	// otherB makes the first update a build of its own, else A's image
	// again.
	otherB bool
	// imgA is A, already built with vars ("": updateFlow builds it).
	imgA string
	// whileA runs while A is up, before the first update.
	whileA func(t *testing.T, h *testHost)
	// noRollback leaves out the broken update C and its rollback, where
	// another test runs them on the same loader (the suite's time).
	noRollback bool
}

// updateFlow is TestUpdate on one boot chain.
func updateFlow(t *testing.T, c updateChain) {
	fw, otherB, vars := c.fw, c.otherB, c.vars
	root := testenv.RepoRoot()
	lock := testCache(t)
	dir := t.TempDir()
	guest := bareGuest(t) // stays stopped
	build := func(name, profile string, more ...string) string {
		t.Helper()
		img := filepath.Join(dir, name+".img")
		args := []string{"build", profile, "-o", img, "--lock", lock, guest[0], guest[1], "-var", "guest_autostart=false"}
		for _, v := range append(append([]string(nil), vars...), more...) {
			args = append(args, "-var", v)
		}
		if stdout, stderr, code := runCLI(t, args...); code != 0 {
			t.Fatalf("build %s exited %d:\n%s\n%s", name, code, stdout, stderr)
		}
		return img
	}
	profile := filepath.Join(root, "examples", "qemu-test.hcl")
	imgA := c.imgA
	if imgA == "" {
		imgA = build("a", profile)
	}
	// A's build as it was built (A's own file changes as it runs).
	copyA := func(name string) string {
		t.Helper()
		img := filepath.Join(dir, name+".img")
		if out, err := exec.Command("cp", "--sparse=always", imgA, img).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", imgA, err, out)
		}
		return img
	}
	imgB := ""
	if otherB {
		imgB = build("b", profile, "share_password=another-test-password")
	} else {
		imgB = copyA("b")
	}
	// C: A's build with a kernel command line on which the kernel finds
	// no init and panics (panic=1 restarts it at once, where every host
	// has panic=10; QEMU runs with -no-reboot and exits). The update
	// carries the slot's command line in its slot.json.
	imgC := ""
	if !c.noRollback {
		imgC = copyA("c")
		var info layout.SlotInfo
		if err := json.Unmarshal(imagetest.ReadESPFile(t, imgC, layout.SlotInfoPath("a")), &info); err != nil {
			t.Fatal(err)
		}
		// The command line its slot.json carries into the update.
		info.Cmdline += " " + panicArgs
		info.Build += "-broken"
		b, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		imagetest.WriteESPFile(t, imgC, layout.SlotInfoPath("a"), b)
	}

	// Boot 1: A, slot a.
	h := bootHostFirmware(t, imgA, 1024, fw)
	line := slotsLine(t, h)
	if !strings.Contains(line, "a (booted, good, build ") {
		t.Fatalf("boot 1 is not slot a, good:\n%s", h.tail())
	}
	buildA := buildOf(t, line, "a")
	if c.whileA != nil {
		c.whileA(t, h)
	}
	st := h.ctl(t, "status")
	if !strings.Contains(st, "a     good") || !strings.Contains(st, "b     empty") {
		t.Errorf("status before the update:\n%s", st)
	}
	out := h.ctl(t, "update", imgB, "--tries", "2")
	if !strings.Contains(out, "slot b holds build ") {
		t.Fatalf("update B:\n%s", out)
	}
	buildB := strings.TrimRight(strings.Fields(strings.SplitAfter(out, "slot b holds build ")[1])[0], ":")
	if otherB && buildB == buildA {
		t.Fatalf("A and B have one build id %s", buildA)
	}
	if st := h.ctl(t, "status"); !strings.Contains(st, "trying (2 boots left)") {
		t.Errorf("status after the update:\n%s", st)
	}
	h.powerOff(t)
	// A file of the user's on the data partition, to find after the
	// update.
	writeDataFile(t, imgA, "/user-file.txt", "written before the update\n")

	// Boot 2: B, from slot b, with A's data partition.
	h = bootHostFirmware(t, imgA, 1024, fw)
	line = slotsLine(t, h)
	if !strings.Contains(line, "b (booted, good, build "+buildB+")") || !strings.Contains(line, "a (good, build "+buildA+")") {
		t.Fatalf("boot 2 is not B in slot b:\n%s", h.tail())
	}
	if d := h.con.Matching("thinhost: data "); len(d) == 0 || !strings.HasSuffix(d[0], ", boot 2") {
		t.Errorf("the data partition is not the one boot 1 made:\n%s", h.tail())
	}
	if c.noRollback {
		h.powerOff(t)
		imagetest.Check(t, imgA)
		if got := readDataFile(t, imgA, "/user-file.txt"); got != "written before the update\n" {
			t.Errorf("the user's file reads %q after the update", got)
		}
		return
	}
	// C into slot a, one boot to prove itself: saved to a file and
	// uploaded on the host's page, as from a browser in Windows.
	saved := filepath.Join(dir, "c.update")
	if out := runCtlLocal(t, "update", imgC, "--save", saved); !strings.Contains(out, "saved to "+saved) {
		t.Fatalf("update C --save:\n%s", out)
	}
	if msg := pageUpload(t, h, saved, 1); !strings.Contains(msg, "Slot a holds build ") {
		t.Fatalf("update C from the page: %s", msg)
	}
	h.powerOff(t)

	// Boot 3: C panics; QEMU exits.
	m := bootFails(t, imgA, fw)
	if !strings.Contains(m, "Kernel panic") {
		t.Errorf("boot 3 did not end in C's kernel panic:\n%s", m)
	}
	// Boot 4: the loader skips C (no tries left) and boots B again.
	h = bootHostFirmware(t, imgA, 1024, fw)
	line = slotsLine(t, h)
	if !strings.Contains(line, "b (booted, good, build "+buildB+")") || !strings.Contains(line, "a (failed, build ") {
		t.Fatalf("boot 4 did not fall back to B:\n%s", h.tail())
	}
	if !h.con.Seen("thinhost: update: the update in slot a") {
		t.Errorf("boot 4 does not say the update rolled back:\n%s", h.tail())
	}
	if st := h.ctl(t, "status"); !strings.Contains(st, "ROLLED BACK") || !strings.Contains(st, "a     failed") {
		t.Errorf("status after the rollback:\n%s", st)
	}
	h.powerOff(t)
	imagetest.Check(t, imgA)
	if got := readDataFile(t, imgA, "/user-file.txt"); got != "written before the update\n" {
		t.Errorf("the user's file reads %q after two updates", got)
	}
}

// panicArgs make a host's kernel find no init and panic, restarting at
// once (where every host has panic=10).
const panicArgs = "rdinit=/nonexistent init=/nonexistent panic=1"

// slotsLine waits for hostd's slots line, printed once the booted slot
// is marked good after the ready line.
func slotsLine(t *testing.T, h *testHost) string {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if l := h.con.Matching(api.SlotsPrefix); len(l) > 0 {
			return l[len(l)-1]
		}
	}
	t.Fatalf("no slots line:\n%s", h.tail())
	return ""
}

// buildOf reads slot's build id from hostd's slots line.
func buildOf(t *testing.T, line, slot string) string {
	t.Helper()
	_, rest, ok := strings.Cut(line, " "+slot+" (")
	if !ok {
		t.Fatalf("no slot %s in %q", slot, line)
	}
	_, id, ok := strings.Cut(rest, "build ")
	if !ok {
		t.Fatalf("slot %s has no build in %q", slot, line)
	}
	return strings.TrimRight(strings.Fields(id)[0], "),")
}

// bootFails boots img, which must not reach hostd's ready line: QEMU
// (with -no-reboot) exits when its kernel restarts. It returns the
// console.
func bootFails(t *testing.T, img string, fw *qemu.Firmware) string {
	t.Helper()
	con := qemu.NewConsole(400, api.ReadyLine)
	m, err := qemu.Start(context.Background(), qemu.Config{Image: img, NoReboot: true, Stdout: con, Stderr: con, MemoryMiB: 1024, CPUs: 2, Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	select {
	case <-con.Ready():
		t.Fatalf("the broken update reached ready:\n%s", strings.Join(con.Tail(), "\n"))
	case <-m.Done():
	case <-time.After(5 * time.Minute):
		t.Fatalf("the broken update neither got ready nor restarted:\n%s", strings.Join(con.Tail(), "\n"))
	}
	return strings.Join(con.Tail(), "\n")
}

// writeDataFile writes a file onto the image's data partition with
// debugfs, through a loop device detached again at once.
func writeDataFile(t *testing.T, img, path, content string) {
	t.Helper()
	debugfs := testenv.NeedTool(t, "debugfs")
	losetup := testenv.NeedTool(t, "losetup")
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := dataLoopMode(t, img, true)
	if out, err := exec.Command(debugfs, "-w", "-R", "write "+src+" "+path, dev).CombinedOutput(); err != nil {
		t.Fatalf("debugfs write %s: %v\n%s", path, err, out)
	}
	if out, err := exec.Command(losetup, "--detach", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup --detach %s: %v\n%s", dev, err, out)
	}
}
