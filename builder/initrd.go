package builder

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/thinhost/thinhost/initramfs"
)

// initrdArtifact is the written initramfs.
type initrdArtifact struct {
	Path               string
	Size, Uncompressed int64
	// Cached is set when hostd and the u-root commands came from the
	// cache rather than the compiler.
	Cached bool
}

// buildInitramfs writes the initramfs into dir: u-root's init and core
// commands, hostd compiled from src, the kernel modules that find and
// mount the system image and the data partition, hostd's configuration.
func buildInitramfs(ctx context.Context, log *slog.Logger, src string, mods *initramfs.ModuleSet, hostdConfig []byte, dir, cacheDir string) (*initrdArtifact, error) {
	path := filepath.Join(dir, "initrd.zst")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create initramfs: %w", err)
	}
	log.Info("building initramfs", "source", src)
	t0 := time.Now()
	res, err := initramfs.Build(ctx, initramfs.Config{
		SourceDir: src, Modules: mods, HostdConfig: hostdConfig, TempDir: dir, CacheDir: cacheDir, Log: log,
	}, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write initramfs: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	log.Info("built initramfs", "bytes", res.Size, "uncompressed", res.Uncompressed, "programs_cached", res.Cached, "duration", time.Since(t0).Round(time.Millisecond))
	return &initrdArtifact{Path: path, Size: res.Size, Uncompressed: res.Uncompressed, Cached: res.Cached}, nil
}
