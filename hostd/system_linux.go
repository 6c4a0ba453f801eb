package hostd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thinhost/thinhost/images/layout"
)

// SystemDir is where the read-only system image is mounted.
const SystemDir = "/system"

// The system image's programs run through its own dynamic loader with its
// own libraries: the initramfs's /lib holds kernel modules, not a libc.
const (
	systemLoader  = SystemDir + "/lib64/ld-linux-x86-64.so.2"
	systemLibPath = SystemDir + "/lib/x86_64-linux-gnu:" + SystemDir + "/usr/lib/x86_64-linux-gnu:" +
		SystemDir + "/usr/lib/x86_64-linux-gnu/swtpm"
)

// mountSystem mounts system slot A (squashfs) read-only on SystemDir.
func mountSystem(ctx context.Context, log *slog.Logger) error {
	part, _, err := findPartition(ctx, layout.SystemAName, 10*time.Second)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(SystemDir, 0o755); err != nil {
		return err
	}
	dev := "/dev/" + part
	if err := unix.Mount(dev, SystemDir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount the system image %s on %s: %w (is squashfs among the kernel's modules?)", dev, SystemDir, err)
	}
	log.Info("system image mounted", "device", dev, "dir", SystemDir)
	return nil
}

// systemCommand runs program (an absolute path inside the system image,
// such as "/sbin/mke2fs") from the mounted system image.
func systemCommand(ctx context.Context, program string, args ...string) *exec.Cmd {
	argv := append([]string{"--library-path", systemLibPath, SystemDir + program}, args...)
	cmd := exec.CommandContext(ctx, systemLoader, argv...)
	cmd.Env = append(os.Environ(), "MKE2FS_CONFIG="+SystemDir+"/etc/mke2fs.conf")
	return cmd
}
