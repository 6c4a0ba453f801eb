package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/thinhost/thinhost/hostd/sysimage"
	"github.com/thinhost/thinhost/images/layout"
	"golang.org/x/sys/unix"
)

// MountSystem mounts the system image of slot (squashfs), the one the
// boot loader booted, read-only on sysimage.Dir.
func MountSystem(ctx context.Context, log *slog.Logger, slot string) error {
	// 15 s from when its driver may still be loading (the boot does not
	// wait for every driver first): a slow USB stick enumerates late.
	part, _, err := FindPartition(ctx, layout.SystemName(slot), 15*time.Second)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(sysimage.Dir, 0o755); err != nil {
		return err
	}
	dev := "/dev/" + part
	if err := unix.Mount(dev, sysimage.Dir, SystemFS, unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount the system image %s on %s: %w (is squashfs among the kernel's modules?)", dev, sysimage.Dir, err)
	}
	log.Info("system image mounted", "slot", slot, "device", dev, "dir", sysimage.Dir)
	return nil
}
