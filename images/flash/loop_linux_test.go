package flash

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images/imagetest"
	"github.com/thinhost/thinhost/internal/testenv"
)

// loopDevice attaches file as a loop device with partition scanning and
// detaches it when the test ends.
func loopDevice(t *testing.T, file string) string {
	t.Helper()
	losetup := testenv.NeedTool(t, "losetup")
	out, err := exec.Command(losetup, "--find", "--show", "--partscan", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "--detach", dev).Run() })
	return dev
}

// TestFlashLoopDevice flashes a loop device full of random bytes, as a
// stand-in for a used USB stick, after checking that every refusal leaves
// it untouched.
func TestFlashLoopDevice(t *testing.T) {
	testenv.NeedE2E(t) // loop devices: the full suite's
	testenv.NeedRoot(t)
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	backing := filepath.Join(dir, "stick.raw")
	const size = 400 << 20
	randomFile(t, backing, size)
	dev := loopDevice(t, backing)
	small := filepath.Join(dir, "small.raw")
	randomFile(t, small, 200<<20)
	smallDev := loopDevice(t, small)

	before := hashOf(t, dev)
	smallBefore := hashOf(t, smallDev)
	refuse := func(name, target string, opts Options, want string) {
		t.Helper()
		_, err := Host.Prepare(image, target, opts)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a refusal mentioning %q", name, err, want)
		}
	}
	refuse("fixed disk", dev, Options{}, "--allow-fixed")
	refuse("too small", smallDev, Options{AllowFixed: true}, "less than the image")
	if _, root, err := Host.MountDevice("/"); err == nil {
		if disks, err := Host.List(); err == nil {
			for _, d := range disks {
				if d.Dev == root {
					refuse("root disk", d.Path, Options{AllowFixed: true}, "mounted on /")
				}
			}
		}
	}

	if hashOf(t, smallDev) != smallBefore || hashOf(t, dev) != before {
		t.Error("a refused flash changed a device")
	}

	// Flash it.
	job, err := Host.Prepare(image, dev, Options{AllowFixed: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := job.Run(context.Background(), false, nil, nil)
	job.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.RereadErr != nil {
		t.Errorf("partition table not re-read: %v", res.RereadErr)
	}
	checkFlashed(t, image, dev, size)
	after := hashOf(t, dev)
	if before == after {
		t.Error("the flash changed nothing?")
	}

	// A disk with a mounted filesystem is refused, and --list says why.
	// (Mounted read-only without the journal, so the kernel itself writes
	// nothing that the hash would take for the flash's doing.)
	used := filepath.Join(dir, "used.raw")
	randomFile(t, used, 300<<20)
	if out, err := exec.Command(testenv.NeedTool(t, "mkfs.ext4"), "-q", "-F", used).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	usedDev := loopDevice(t, used)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "ro,noload", usedDev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", usedDev, err, out)
	}
	defer exec.Command("umount", mnt).Run()
	usedBefore := hashOf(t, usedDev)
	refuse("mounted", usedDev, Options{AllowFixed: true}, usedDev+" is mounted on "+mnt)
	disks, err := Host.List()
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, d := range disks {
		if d.Path == usedDev {
			listed = strings.Contains(strings.Join(d.InUse(), " "), mnt)
		}
	}
	if !listed {
		t.Errorf("--list does not show %s with its mount on %s", usedDev, mnt)
	}
	if hashOf(t, usedDev) != usedBefore {
		t.Error("a refused flash changed the mounted device")
	}
}

// TestRefusePartition: a partition is refused, naming its disk. The
// kernel here may not scan partitions on loop devices, so the partition is
// a device node of our own with a sysfs tree that says what the kernel
// says of a partition.
func TestRefusePartition(t *testing.T) {
	testenv.NeedE2E(t) // loop devices: the full suite's
	testenv.NeedRoot(t)
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	sys := filepath.Join(dir, "sys")
	devDir := filepath.Join(dir, "dev")
	disk := filepath.Join(sys, "block", "sdz")
	part := filepath.Join(disk, "sdz1")
	for _, d := range []string{part, filepath.Join(sys, "dev", "block"), devDir} {
		os.MkdirAll(d, 0o755)
	}
	write := func(p, v string) { os.WriteFile(p, []byte(v+"\n"), 0o644) }
	write(filepath.Join(disk, "size"), "4194304")
	write(filepath.Join(disk, "dev"), "8:400")
	write(filepath.Join(disk, "removable"), "1")
	write(filepath.Join(part, "size"), "2097152")
	write(filepath.Join(part, "dev"), "8:401")
	write(filepath.Join(part, "partition"), "1")
	os.Symlink(part, filepath.Join(sys, "dev", "block", "8:401"))
	node := filepath.Join(devDir, "sdz1")
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(8, 401))); err != nil {
		t.Skipf("mknod: %v", err)
	}
	fake := System{Sys: sys, Proc: "/proc", Dev: devDir}
	_, err := fake.Prepare(image, node, Options{})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "is a partition of "+filepath.Join(devDir, "sdz")) {
		t.Errorf("err = %v, want a refusal naming the disk", err)
	}
}

// TestFlashDeviceChanged: the device held since the checks changes
// before the write (its capacity, as a replugged stick of another size
// would): the write is refused and nothing is written.
func TestFlashDeviceChanged(t *testing.T) {
	testenv.NeedE2E(t) // loop devices: the full suite's
	testenv.NeedRoot(t)
	losetup := testenv.NeedTool(t, "losetup")
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	backing := filepath.Join(dir, "stick.raw")
	randomFile(t, backing, 400<<20)
	dev := loopDevice(t, backing)
	job, err := Host.Prepare(image, dev, Options{AllowFixed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	// While the user reads the confirmation: the device grows.
	if err := os.Truncate(backing, 500<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(losetup, "--set-capacity", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup --set-capacity: %v\n%s", err, out)
	}
	before := hashOf(t, backing)
	if _, err := job.Run(context.Background(), false, nil, nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not the device that was checked") {
		t.Errorf("Run on a changed device: %v, want a refusal", err)
	}
	if hashOf(t, backing) != before {
		t.Error("a refused flash wrote to the device")
	}
}

// TestFlashWriteError: the device fails writes part of the way (a loop
// device over a sparse file on a 16 MiB tmpfs: past that the loop driver
// gets ENOSPC and fails the writes with EIO, as a dying or fake-capacity
// stick would): flash reports the error, and the boot sectors, zeroed
// first, stay zeroed, so no firmware boots a half-written stick.
func TestFlashWriteError(t *testing.T) {
	testenv.NeedE2E(t) // loop devices: the full suite's
	testenv.NeedRoot(t)
	dir := t.TempDir()
	image, _ := imagetest.WriteSmall(t, dir)
	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() }) // after the loop device is detached
	backing := filepath.Join(small, "stick.raw")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	// An old stick's boot sectors: a firmware would boot them.
	old := make([]byte, 1024)
	copy(old[510:], "\x55\xaa")
	copy(old[512:], "EFI PART")
	f.Write(old)
	f.Truncate(400 << 20)
	f.Close()
	dev := loopDevice(t, backing)
	job, err := Host.Prepare(image, dev, Options{AllowFixed: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Run(context.Background(), false, nil, nil)
	job.Close()
	if err == nil {
		t.Fatal("a flash onto a device that fails writes succeeded")
	}
	boot := make([]byte, 1024)
	g, _ := os.Open(backing)
	defer g.Close()
	g.ReadAt(boot, 0)
	if !bytes.Equal(boot, make([]byte, len(boot))) {
		t.Errorf("after a write error the boot sectors are not zeroed: the stick could look bootable (%v)", err)
	}
	t.Logf("write error reported as: %v", err)
}
