package initramfs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"
)

// HostdPackage is hostd's import path; it becomes /bin/uinit.
const HostdPackage = "github.com/thinhost/thinhost/cmd/hostd"

// ConfigPath is where hostd finds its runtime configuration in the image.
const ConfigPath = "etc/thinhost/hostd.json"

// CoreCommands are the u-root commands shipped for debugging a host from
// its console, besides init.
//
// Each must also be a tool directive in go.mod (go get -tool
// github.com/u-root/u-root/cmds/core/NAME@VERSION), which keeps u-root in the
// module graph where mkuimage finds its sources; a test checks both lists
// agree.
var CoreCommands = []string{
	"init", "gosh",
	// Files.
	"ls", "cat", "cp", "mv", "rm", "mkdir", "ln", "chmod", "touch", "find", "readlink",
	"head", "tail", "more", "grep", "wc", "sort", "uniq", "tr", "tee", "hexdump", "dd", "truncate", "shasum",
	// Network.
	"ip", "dhclient", "ping", "wget", "netstat", "netcat",
	// Disks and mounts.
	"mount", "umount", "df", "du", "blkid", "gpt", "losetup", "sync",
	// Processes, kernel and machine.
	"dmesg", "ps", "kill", "pidof", "free", "uptime", "date", "sleep", "echo", "which", "stty", "strace",
	"lsmod", "insmod", "rmmod", "uname", "hostname", "pci", "lsdrivers", "poweroff", "shutdown",
}

// Config says what goes into the initramfs.
type Config struct {
	// SourceDir is the root of the thinhost Go module (it requires u-root,
	// so mkuimage finds every command in the module cache).
	SourceDir string
	// Modules is the kernel module closure to ship; may be nil.
	Modules *ModuleSet
	// HostdConfig is hostd's JSON configuration, stored at ConfigPath.
	HostdConfig []byte
	// TempDir holds intermediate files; it must exist.
	TempDir string
	Log     *slog.Logger
}

// Result describes a built initramfs.
type Result struct {
	// Size is the compressed size; Uncompressed the cpio size.
	Size, Uncompressed int64
}

// Build writes the zstd-compressed initramfs to w.
func Build(ctx context.Context, cfg Config, w io.Writer) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	stage, err := os.MkdirTemp(cfg.TempDir, "initramfs-stage-")
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	defer os.RemoveAll(stage)

	var files []string
	add := func(rel string, data []byte) error {
		p := filepath.Join(stage, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		files = append(files, p+":"+rel)
		return nil
	}
	if err := add(ConfigPath, cfg.HostdConfig); err != nil {
		return nil, fmt.Errorf("stage hostd config: %w", err)
	}
	if m := cfg.Modules; m != nil && len(m.Modules) > 0 {
		base := path.Join("lib/modules", m.Release)
		for _, mod := range m.Modules {
			files = append(files, filepath.Join(m.Dir, filepath.FromSlash(mod.Path))+":"+path.Join(base, mod.Path))
		}
		if err := add(path.Join(base, "modules.dep"), m.ModulesDep()); err != nil {
			return nil, fmt.Errorf("stage modules.dep: %w", err)
		}
		for _, extra := range []string{"modules.builtin", "modules.order"} {
			if _, err := os.Stat(filepath.Join(m.Dir, extra)); err == nil {
				files = append(files, filepath.Join(m.Dir, extra)+":"+path.Join(base, extra))
			}
		}
	}

	cmds := []string{HostdPackage}
	for _, c := range CoreCommands {
		cmds = append(cmds, "github.com/u-root/u-root/cmds/core/"+c)
	}
	cpioPath := filepath.Join(stage, "initramfs.cpio")
	printf := func(format string, v ...any) {
		cfg.Log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "phase", "initramfs")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = uimage.Create(llog.New(slog.LevelInfo, printf),
		uimage.WithReplaceEnv(golang.Default(golang.DisableCGO(), golang.WithWorkingDir(cfg.SourceDir))),
		uimage.WithTempDir(stage),
		uimage.WithBaseArchive(uimage.DefaultRamfs()),
		uimage.WithBusyboxCommands(cmds...),
		uimage.WithInit("init"),
		uimage.WithUinit("hostd"),
		uimage.WithShell("gosh"),
		// Modules and config only, no programs: mkuimage's ldd would run
		// the loader on every kernel module.
		uimage.WithSkipLDD(),
		uimage.WithFiles(files...),
		uimage.WithCPIOOutput(cpioPath),
	)
	if err != nil {
		return nil, fmt.Errorf("build initramfs with mkuimage (source %s): %w", cfg.SourceDir, err)
	}
	return compress(cpioPath, w)
}

func compress(cpioPath string, w io.Writer) (*Result, error) {
	in, err := os.Open(cpioPath)
	if err != nil {
		return nil, fmt.Errorf("open cpio: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	// The kernel's zstd decoder wants a bounded window; 8 MiB is its
	// default for initramfs images too.
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(8<<20))
	if err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		zw.Close()
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	return &Result{Size: cw.n, Uncompressed: fi.Size()}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
