package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/thinhost/thinhost/builder/archive"
	"github.com/thinhost/thinhost/cmd/thinhost/cli"
	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/images/qemu"
	"github.com/thinhost/thinhost/internal/gpt"
	"github.com/thinhost/thinhost/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of QEMU's
// output copier and the CLI.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb syncBuffer
	code = cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// consoleLines is how many console lines a test keeps to show on failure.
const consoleLines = 40

// TestBuildAndBoot is the foundation's acceptance, as a user would try it:
// build examples/qemu-test.hcl, check the image with sgdisk -v, fsck.vfat
// -n and cpio -t, boot it under UEFI to hostd's ready line and power it off
// with the ACPI button; a second build of the same inputs is
// byte-identical.
func TestBuildAndBoot(t *testing.T) {
	testenv.NeedE2E(t)
	testenv.NeedTool(t, "qemu-system-x86_64")
	cpio := testenv.NeedTool(t, "cpio")
	root := testenv.RepoRoot()
	// Built as by someone who installed thinhost: in a directory that is
	// no checkout, with a copy of the profile and no THINHOST_SRC, hostd
	// and u-root's commands are compiled from the source the thinhost
	// binary carries. (Every other test builds inside the checkout.)
	work := t.TempDir()
	profile := filepath.Join(work, "qemu-test.hcl")
	if b, err := os.ReadFile(filepath.Join(root, "examples", "qemu-test.hcl")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(profile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("THINHOST_SRC", "")
	t.Chdir(work)
	// Its own programs cache: the first build compiles hostd, the second
	// (warm, offline) must give the same bytes.
	lock := testCacheColdPrograms(t)

	dir := t.TempDir()
	img := filepath.Join(dir, "out", "test.img")
	// The test guest is TestGuestLifecycle's; here it stays stopped.
	guestVars := append(bareGuest(t), "-var", "guest_autostart=false", "--lock", lock)
	stdout, stderr, code := runCLI(t, append([]string{"build", profile, "-o", img}, guestVars...)...)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("build:\n%s", stdout)
	if !strings.Contains(stdout, "programs  compiled from this thinhost's own source (no checkout here)") {
		t.Errorf("the build outside a checkout did not say it used thinhost's own source:\n%s", stdout)
	}
	parts := imagetest.Check(t, img)
	if len(parts) != 4 || parts[0].Name != layout.ESPName || parts[3].Name != layout.DataName {
		t.Errorf("partitions = %+v, want ESP, system A, system B, data", parts)
	}

	// The initramfs, listed by the real cpio.
	initrd := imagetest.ReadESPFile(t, img, layout.InitrdPath("a"))
	zr, err := zstd.NewReader(bytes.NewReader(initrd))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("initramfs is not zstd: %v", err)
	}
	cmd := exec.Command(cpio, "-tv", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -tv: %v", err)
	}
	for _, want := range []string{"init", "bbin/hostd", "bbin/gosh", "bbin/dhclient", "bbin/poweroff",
		"etc/thinhost/hostd.json", "lib/modules/6.1.0-", "virtio_blk.ko", "ext4.ko", "modules.dep", "modules.alias"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("initramfs lacks %q", want)
		}
	}
	// The profile's secrets are nowhere in the image: not in the
	// initramfs (hostd.json carries the API token's SHA-256 and the share
	// password's NT hash), not in any byte of the ESP or the system
	// partition.
	for _, secret := range []string{testToken, "thin-test-password"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the initramfs carries the profile's secret %q", secret)
		}
		for _, p := range parts[:2] {
			if partitionContains(t, img, p, []byte(secret)) {
				t.Errorf("partition %s carries the profile's secret %q", p.Name, secret)
			}
		}
	}
	// hostd's configuration (the share password) is root's alone.
	if !regexp.MustCompile(`(?m)^-rw------- .* etc/thinhost/hostd\.json$`).Match(list) {
		t.Errorf("hostd.json is not mode 0600 in the initramfs:\n%s", list)
	}

	// The host's packages came from the archive, pinned by the lock file
	// the build wrote, and the manifest names it.
	if !strings.Contains(stdout, "packages  ") || !strings.Contains(stdout, " from "+lock) {
		t.Errorf("build output does not name the lock file %s:\n%s", lock, stdout)
	}
	l, err := archive.ReadLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	man, _ := os.ReadFile(img + ".manifest.json")
	for _, want := range []string{`"lock": {`, `"path": "packages.lock"`, `"package": "samba"`, `"package": "qemu-system-x86"`} {
		if !strings.Contains(string(man), want) {
			t.Errorf("manifest lacks %s", want)
		}
	}
	t.Logf("%d packages locked", len(l.Packages))

	// The same inputs again, offline (from the lock file and the cache):
	// the same bytes (before any boot writes to the data partition).
	img2 := filepath.Join(dir, "out", "again.img")
	if _, stderr, code := runCLI(t, append([]string{"build", profile, "-o", img2, "--offline"}, guestVars...)...); code != 0 {
		t.Fatalf("second build (offline) exited %d: %s", code, stderr)
	}
	if a, b := imagetest.Hash(t, img), imagetest.Hash(t, img2); a != b {
		t.Errorf("two builds of the same inputs differ")
	}

	// Boot it: hostd creates ext4 on the empty data partition.
	stdout, stderr, code = runCLI(t, "run", img, "--check", "--timeout", "5m")
	t.Logf("run --check:\n%s%s", stdout, stderr)
	if code != 0 {
		t.Fatalf("run --check exited %d", code)
	}
	if !regexp.MustCompile(`(?m)^ready in [0-9.]+s \((TCG|KVM)\)$`).MatchString(stdout) {
		t.Errorf("run --check did not print the time to ready: %q", stdout)
	}
	if !strings.Contains(stderr, "firmware /") {
		t.Errorf("run did not name the firmware it used: %q", stderr)
	}
	if !strings.Contains(stdout, "powered off cleanly") {
		t.Errorf("no clean power-off reported: %q", stdout)
	}
	if !strings.Contains(stdout, "\nservices: smbd running, hello ") {
		t.Errorf("run --check did not repeat hostd's services line:\n%s", stdout)
	}
	first := dataStatus(t, stdout)
	if first.boot != 1 || !strings.Contains(first.line, "created this boot") {
		t.Errorf("first boot should create the data filesystem: %q", first.line)
	}
	// The first boot gave the disk and its partitions their own GUIDs
	// (img2 is the same build, never booted), and both tables are valid.
	imagetest.Check(t, img)
	booted, built := diskGUIDs(t, img), diskGUIDs(t, img2)
	for i := range built {
		if booted[i] == built[i] {
			t.Errorf("GUID %d (of the disk, then partitions 1-4) is still the image's after the first boot: %s", i, built[i])
		}
	}

	// A second build, without the USB storage drivers.
	noUSB := filepath.Join(dir, "out", "no-usb.img")
	if _, stderr, code := runCLI(t, append([]string{"build", profile, "-o", noUSB, "-var", "hardware=virtio"}, guestVars...)...); code != 0 {
		t.Fatalf("build without USB drivers: exit %d\n%s", code, stderr)
	}

	// Flashed to a used USB stick — a loop device full of random bytes —
	// it boots from USB under OVMF on the emulated laptop; then the stick
	// is updated to the second build with flash --keep-data.
	flashAndBootStick(t, img, noUSB, filepath.Join(dir, "stick.raw"))

	// Without the USB storage drivers the stick's host comes up without
	// its data partition: run --check says so and fails.
	stdout, stderr, code = runCLI(t, "run", noUSB, "--usb", "--check", "--timeout", "5m")
	t.Logf("run --usb --check without USB storage drivers:\n%s%s", stdout, stderr)
	if code == 0 || !strings.Contains(stderr, "check failed: the host is degraded: data partition not mounted") {
		t.Errorf("a stick that cannot find its data partition passed run --check (exit %d)", code)
	}

	// Boot 2 finds it (the boot counter on it says 2); then the image
	// grows by 2 GiB and boot 3 grows the partition and the filesystem.
	// Boot 2 has a second stick attached, flashed from the same image and
	// never booted (img2: an empty data partition hostd would format, on
	// a disk whose GUIDs this one had before its first boot). hostd uses
	// only the disk it booted from, and leaves the other byte for byte.
	otherBefore := imagetest.Hash(t, img2)
	second := bootStatus(t, img, "--disk", img2)
	if second.boot != 2 || strings.Contains(second.line, "created") || second.sizeMiB != first.sizeMiB {
		t.Errorf("second boot: %q (first: %q)\n%s", second.line, first.line, second.console)
	}
	if imagetest.Hash(t, img2) != otherBefore {
		t.Errorf("booting with a second thinhost disk attached changed that disk\n%s", second.console)
	}
	if err := os.Truncate(img, imageSize(t, img)+2<<30); err != nil {
		t.Fatal(err)
	}
	third := bootStatus(t, img)
	if third.boot != 3 || !strings.Contains(third.line, "grown this boot") || third.sizeMiB < first.sizeMiB+1900 {
		t.Errorf("after growing the image by 2 GiB: %q (first: %q)\n%s", third.line, first.line, third.console)
	}
	imagetest.Check(t, img) // the GPT, backup moved to the new end
	checkDataFS(t, img)

	// The management API through a forward: status with the profile's
	// token, 401 with a wrong one, and a clean power-off on request.
	apiThroughForward(t, img)

	// Pull the plug four times (at staggered moments after ready, 1.5 to
	// 2.4 s) while hostd writes and syncs its log; every boot must come up
	// and find what the previous one synced.
	hardKills(t, img, 4, 5)

	// A data partition holding a filesystem hostd does not make is never
	// formatted: the host comes up without it and says so.
	foreignDataPartition(t, img)

}

func flashAndBootStick(t *testing.T, img, update, backing string) {
	testenv.NeedRoot(t)
	losetup := testenv.NeedTool(t, "losetup")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.CopyN(f, rand.Reader, 2304<<20)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(losetup, "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command(losetup, "--detach", dev).Run()

	stdout, stderr, code := runCLI(t, "flash", img, dev, "--yes", "--allow-fixed")
	t.Logf("flash:\n%s%s", stdout, stderr)
	if code != 0 || !strings.Contains(stdout, "holds the image") {
		t.Fatalf("flash exited %d", code)
	}
	imagetest.Check(t, dev)
	// On the emulated laptop: the stick on xHCI beside an empty NVMe
	// disk, no virtio device; the data partition is the stick's.
	stdout, stderr, code = runCLI(t, "run", dev, "--machine", "laptop", "--check", "--timeout", "5m")
	t.Logf("run --machine laptop --check:\n%s%s", stdout, stderr)
	if code != 0 || !strings.Contains(stdout, "powered off cleanly") || !strings.Contains(stdout, "health: ok") ||
		!regexp.MustCompile(`(?m)^data /data on /dev/sd[a-z]4: `).MatchString(stdout) {
		t.Fatalf("the flashed stick did not boot to ready on the emulated laptop and power off (exit %d)", code)
	}

	// flash --keep-data writes the other build's boot and system
	// partitions and leaves the data partition byte for byte; the stick
	// then boots the new build (on the virtio machine: it has no USB
	// storage drivers) with the old files: the boot counter goes on.
	parts, err := images.ReadPartitions(dev)
	if err != nil {
		t.Fatal(err)
	}
	data := parts[len(parts)-1]
	before := partitionHash(t, dev, data)
	stdout, stderr, code = runCLI(t, "flash", update, dev, "--keep-data", "--yes", "--allow-fixed")
	t.Logf("flash --keep-data:\n%s%s", stdout, stderr)
	if code != 0 || !strings.Contains(stdout, "holds the image") || !strings.Contains(stderr, "its data partition (partition 4, ") {
		t.Fatalf("flash --keep-data exited %d", code)
	}
	if partitionHash(t, dev, data) != before {
		t.Errorf("flash --keep-data changed the data partition")
	}
	if !bytes.Equal(imagetest.ReadESPFile(t, dev, layout.InitrdPath("a")), imagetest.ReadESPFile(t, update, layout.InitrdPath("a"))) {
		t.Errorf("after flash --keep-data the stick's ESP does not hold the new build's initramfs")
	}
	updated := bootStatus(t, dev)
	if updated.boot != 3 || strings.Contains(updated.line, "created") {
		t.Errorf("the updated stick's data partition: %q, want boot 3 of the same filesystem\n%s", updated.line, updated.console)
	}
}

type dataLine struct {
	line    string
	boot    int
	sizeMiB int
	console string // the boot's console, for the failure message
}

// dataStatus finds hostd's data partition line in run --check's output.
func dataStatus(t *testing.T, stdout string) dataLine {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(data /data on /dev/vda4: ([0-9]+) MiB, [0-9]+ MiB free, boot ([0-9]+).*)$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("run --check printed no data partition status:\n%s", stdout)
	}
	size, _ := strconv.Atoi(m[2])
	boot, _ := strconv.Atoi(m[3])
	return dataLine{line: m[1], boot: boot, sizeMiB: size}
}

func bootStatus(t *testing.T, img string, flags ...string) dataLine {
	t.Helper()
	stdout, stderr, code := runCLI(t, append([]string{"run", img, "--check", "-v", "--timeout", "5m"}, flags...)...)
	if code != 0 {
		t.Fatalf("run --check exited %d:\n%s%s", code, stdout, stderr)
	}
	d := dataStatus(t, stdout)
	d.console = stderr
	return d
}

func imageSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkDataFS runs e2fsck -fn on the image's data partition through a
// loop device at its offset.
func checkDataFS(t *testing.T, img string) {
	t.Helper()
	e2fsck := testenv.NeedTool(t, "e2fsck")
	dev := dataLoop(t, img)
	if out, err := exec.Command(e2fsck, "-fn", dev).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the data partition: %v\n%s", err, out)
	}
}

func apiThroughForward(t *testing.T, img string) {
	t.Helper()
	h := bootHost(t, img, 1024)
	stdout := h.ctl(t, "status")
	t.Logf("ctl status:\n%s", stdout)
	if !regexp.MustCompile(`(?m)^data +/dev/vda4: [0-9.]+ [KMG]iB, [0-9.]+ [KMG]iB free, boot 4$`).MatchString(stdout) {
		t.Errorf("ctl status does not show boot 4's data partition")
	}
	// The profile's service from a Debian package ran under the
	// supervisor, as its own user, and its output is in hostd's log.
	logs := h.ctl(t, "logs")
	if !regexp.MustCompile(`thinhost-service: hello from a Debian package.*service=hello`).MatchString(logs) ||
		!regexp.MustCompile(`msg="service started".* service=hello program=/usr/bin/hello user=svc-hello uid=[0-9]+ `).MatchString(logs) {
		t.Errorf("the hello service's start or output is not in hostd's log:\n%s", logs)
	}
	_, stderr, code := runCLI(t, append(h.ctlArgs("not-the-token"), "status")...)
	if code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("a wrong token: exit %d, %q", code, stderr)
	}
	// Plain HTTP where the host's network gets HTTPS: refused, and told
	// the fingerprint to compare.
	_, stderr, code = runCLI(t, "ctl", "--addr", h.api, "--token", testToken, "status")
	if code == 0 || !strings.Contains(stderr, "--fingerprint "+h.fp) {
		t.Errorf("plain HTTP on the host's network: exit %d, %q; want a refusal naming %s", code, stderr, h.fp)
	}
	// 2,000 idle connections through the forward, as anyone on the
	// host's network could open, 64 at a time (QEMU's user networking
	// listens with a backlog of 1: one dialer at a time gets a few a
	// second, many together about 60): a legitimate ctl status still
	// answers while they are open.
	var (
		idleMu sync.Mutex
		idle   []net.Conn
		opened atomic.Int64
		wg     sync.WaitGroup
	)
	floodStart := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for opened.Load() < 2000 && time.Since(floodStart) < 5*time.Minute {
				c, err := net.DialTimeout("tcp", h.api, 20*time.Second)
				if err != nil {
					continue
				}
				if opened.Add(1) > 2000 {
					c.Close()
					return
				}
				idleMu.Lock()
				idle = append(idle, c)
				idleMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := opened.Load(); n < 2000 {
		t.Fatalf("opened %d idle connections through the forward in 5 minutes, want 2,000", n)
	}
	start := time.Now()
	h.ctl(t, "status")
	t.Logf("2,000 idle connections through the forward in %.1fs; ctl status beside them: %.1fs", start.Sub(floodStart).Seconds(), time.Since(start).Seconds())
	for _, c := range idle {
		c.Close()
	}
	h.powerOff(t)
	if !h.con.Seen("thinhost: powering off (API poweroff)") {
		t.Errorf("no API power-off on the console:\n%s", h.tail())
	}
}

// hardKills boots img n times and kills QEMU (SIGKILL: the plug pulled) a
// moment after hostd is ready; the first of these boots is number first.
// Each boot must come up and count itself exactly once (the counter is
// synced before hostd prints it); then one clean boot, after which the
// filesystem checks clean and hostd.log on it holds every boot's line
// (hostd syncs its log within a second; each kill comes 1.5 s or more
// after the line).
func hardKills(t *testing.T, img string, n, first int) {
	t.Helper()
	for i := 0; i < n; i++ {
		con := qemu.NewConsole(consoleLines, api.ReadyLine)
		m, err := qemu.Start(context.Background(), qemu.Config{Image: img, NoReboot: true, Stdout: con, Stderr: con})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-con.Ready():
		case <-m.Done():
			t.Fatalf("boot after %d hard kills: QEMU exited:\n%s", i, strings.Join(con.Tail(), "\n"))
		case <-time.After(5 * time.Minute):
			m.Kill()
			t.Fatalf("boot after %d hard kills did not come up:\n%s", i, strings.Join(con.Tail(), "\n"))
		}
		got := dataStatus(t, strings.TrimPrefix(strings.Join(con.Matching(api.DataPrefix), "\n"), "thinhost: "))
		if got.boot != first+i {
			t.Errorf("after %d hard kills the boot counter says %d, want %d: a synced write was lost or repeated", i, got.boot, first+i)
		}
		time.Sleep(1500*time.Millisecond + time.Duration(i)*300*time.Millisecond)
		m.Kill()
	}
	t.Logf("%d boots, each killed hard after ready; all came up with the boot counter intact", n)
	final := bootStatus(t, img)
	if final.boot != first+n {
		t.Errorf("clean boot after the kills: boot %d, want %d", final.boot, first+n)
	}
	checkDataFS(t, img)
	log := readDataFile(t, img, "/logs/hostd.log")
	missing := 0
	for b := first; b <= first+n; b++ {
		if !regexp.MustCompile(fmt.Sprintf(`msg="data partition ready" svc=hostd boot=%d `, b)).MatchString(log) {
			missing++
			t.Errorf("hostd.log lacks boot %d's line", b)
		}
	}
	t.Logf("hostd.log holds %d of %d boots' synced lines", n+1-missing, n+1)
}

// readDataFile reads a file from the image's data partition with debugfs
// (no mount needed).
func readDataFile(t *testing.T, img, path string) string {
	t.Helper()
	debugfs := testenv.NeedTool(t, "debugfs")
	dev := dataLoop(t, img)
	out, err := exec.Command(debugfs, "-R", "cat "+path, dev).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

// dataLoop attaches the image's data partition as a read-only loop device
// for the rest of the test.
func dataLoop(t *testing.T, img string) string {
	t.Helper()
	return dataLoopMode(t, img, false)
}

// dataLoopMode attaches the image's data partition to a loop device,
// read-only unless writable.
func dataLoopMode(t *testing.T, img string, writable bool) string {
	t.Helper()
	testenv.NeedRoot(t)
	losetup := testenv.NeedTool(t, "losetup")
	parts, err := images.ReadPartitions(img)
	if err != nil {
		t.Fatal(err)
	}
	data := parts[len(parts)-1]
	args := []string{"--find", "--show", "--offset", strconv.FormatInt(int64(data.Start)*512, 10),
		"--sizelimit", strconv.FormatInt(data.Size(), 10), img}
	if !writable {
		args = append([]string{"--read-only"}, args...)
	}
	out, err := exec.Command(losetup, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "--detach", dev).Run() })
	return dev
}

func foreignDataPartition(t *testing.T, img string) {
	t.Helper()
	parts, err := images.ReadPartitions(img)
	if err != nil {
		t.Fatal(err)
	}
	data := parts[len(parts)-1]
	off := int64(data.Start) * 512
	// Someone's data where thinhost's ext4 was, each kind in turn over
	// what the previous left: the ext4 with its primary superblock
	// zeroed (Probe sees no ext4 any more), BitLocker's header, an LVM2
	// label. Each time the host comes up without its data partition,
	// says what it found, fails run --check, and leaves every byte.
	lvm := make([]byte, 1024)
	copy(lvm[512:], "LABELONE")
	copy(lvm[512+24:], "LVM2 001")
	for _, c := range []struct {
		name string
		at   int64
		b    []byte
		says string
	}{
		{"ext4 without its superblock", 1024, make([]byte, 1024), "holds data hostd has no name for"},
		{"BitLocker", 0, append([]byte("\xebX\x90-FVE-FS-"), make([]byte, 500)...), "holds BitLocker"},
		{"LVM2", 0, lvm, "holds an LVM2 physical volume"},
	} {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(c.b, off+c.at); err != nil {
			t.Fatal(err)
		}
		f.Close()
		before := partitionHash(t, img, data)

		stdout, stderr, code := runCLI(t, "run", img, "--check", "--timeout", "5m")
		if code == 0 || !strings.Contains(stdout, "ready in") || !strings.Contains(stdout, "powered off cleanly") ||
			!strings.Contains(stderr, "check failed: the host is degraded: data partition not mounted: /dev/vda4 "+c.says) {
			t.Fatalf("%s: a host with someone's data on its data partition must come up, power off, and fail the check (exit %d):\n%s%s", c.name, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "data partition NOT MOUNTED: /dev/vda4 "+c.says) || !strings.Contains(stdout, "hostd never formats it and leaves it untouched") {
			t.Errorf("%s: the console did not say why the data partition is not used:\n%s", c.name, stdout)
		}
		if partitionHash(t, img, data) != before {
			t.Errorf("%s: hostd changed a data partition holding someone's data", c.name)
		}
	}
}

// partitionHash is the SHA-256 of partition p of img.
func partitionHash(t *testing.T, img string, p images.Partition) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, int64(p.Start)*512, p.Size())); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// partitionContains says whether partition p of img holds needle.
func partitionContains(t *testing.T, img string, p images.Partition, needle []byte) bool {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, int64(p.Start)*512, p.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, needle)
}

// readTable opens the disk image img and reads its partition table; t's
// cleanup closes it.
func readTable(t *testing.T, img string) (*os.File, *gpt.Table) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	tab, err := gpt.Read(f, fi.Size()/gpt.SectorSize)
	if err != nil {
		t.Fatalf("the partition table of %s: %v", img, err)
	}
	return f, tab
}

// diskGUIDs reads the GUID of img's disk, then its partitions'.
func diskGUIDs(t *testing.T, img string) []string {
	t.Helper()
	_, tab := readTable(t, img)
	guids := []string{tab.DiskGUID()}
	for _, p := range tab.Partitions() {
		guids = append(guids, p.GUID)
	}
	return guids
}
