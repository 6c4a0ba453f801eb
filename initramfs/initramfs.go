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

	"github.com/thinhost/thinhost/internal/fsutil"
)

// HostdPackage is hostd's import path; it becomes /bin/uinit.
const HostdPackage = "github.com/thinhost/thinhost/cmd/hostd"

// ModprobePackage is the image's modprobe, the kernel's module helper
// (modules.ModprobePath).
const ModprobePackage = "github.com/thinhost/thinhost/cmd/modprobe"

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
	// CacheDir, when set, keeps built programs archives (initramfs/ under
	// it), keyed by what they are built from: a warm build skips the Go
	// compile.
	CacheDir string
	Log      *slog.Logger
}

// Result describes a built initramfs.
type Result struct {
	// Size is the compressed size; Uncompressed the cpio size.
	Size, Uncompressed int64
	// Cached is set when the programs came from the cache.
	Cached bool
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

	var files []stagedFile
	add := func(rel string, data []byte, mode uint64) error {
		p := filepath.Join(stage, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		files = append(files, stagedFile{p, rel, mode})
		return nil
	}
	// hostd's configuration holds the API token and the share password:
	// root's alone.
	if err := add(ConfigPath, cfg.HostdConfig, 0o600); err != nil {
		return nil, fmt.Errorf("stage hostd config: %w", err)
	}
	if m := cfg.Modules; m != nil && len(m.Modules) > 0 {
		base := path.Join("lib/modules", m.Release)
		m.PackEarly()
		for _, mod := range m.Modules {
			if mod.Late {
				continue // in the system image
			}
			src := filepath.Join(m.Dir, filepath.FromSlash(mod.Path))
			if !mod.Packed {
				files = append(files, stagedFile{src: src, dst: path.Join(base, mod.Path)})
				continue
			}
			ko, err := os.ReadFile(src)
			if err == nil {
				ko, err = Pack(ko)
			}
			if err == nil {
				err = add(path.Join(base, mod.Path+".zst"), ko, 0)
			}
			if err != nil {
				return nil, fmt.Errorf("stage module %s: %w", mod.Name, err)
			}
		}
		if err := add(path.Join(base, "modules.dep"), m.ModulesDep(), 0); err != nil {
			return nil, fmt.Errorf("stage modules.dep: %w", err)
		}
		if err := add(path.Join(base, "modules.alias"), m.ModulesAlias(), 0); err != nil {
			return nil, fmt.Errorf("stage modules.alias: %w", err)
		}
		// modules.builtin lets the debug shell see what is built in;
		// modules.order (160 KiB, for depmod alone) stays out of RAM.
		for _, extra := range []string{"modules.builtin"} {
			if _, err := os.Stat(filepath.Join(m.Dir, extra)); err == nil {
				files = append(files, stagedFile{src: filepath.Join(m.Dir, extra), dst: path.Join(base, extra)})
			}
		}
	}

	cmds := []string{HostdPackage, ModprobePackage}
	for _, c := range CoreCommands {
		cmds = append(cmds, "github.com/u-root/u-root/cmds/core/"+c)
	}
	programs, cached, err := buildPrograms(ctx, cfg, cmds, stage)
	if err != nil {
		return nil, err
	}
	cpioPath := filepath.Join(stage, "initramfs.cpio")
	if err := compose(programs, files, cpioPath); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	res, err := compress(cpioPath, w)
	if res != nil {
		res.Cached = cached
	}
	return res, err
}

// buildPrograms returns the path of the programs archive: from the cache
// when it holds one with the same key, else built by mkuimage (and kept
// in the cache).
func buildPrograms(ctx context.Context, cfg Config, cmds []string, stage string) (string, bool, error) {
	var cached string
	if cfg.CacheDir != "" {
		key, err := programsKey(ctx, cfg.SourceDir, cmds)
		if err != nil {
			return "", false, err
		}
		cached = filepath.Join(cfg.CacheDir, "initramfs", key+".cpio")
		if _, err := os.Stat(cached); err == nil {
			cfg.Log.Info("initramfs programs from the cache", "key", key[:16])
			return cached, true, nil
		}
	}
	out := filepath.Join(stage, "programs.cpio")
	printf := func(format string, v ...any) {
		cfg.Log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "phase", "initramfs")
	}
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	err := uimage.Create(llog.New(slog.LevelInfo, printf),
		uimage.WithReplaceEnv(golang.Default(golang.DisableCGO(), golang.WithWorkingDir(cfg.SourceDir))),
		uimage.WithTempDir(stage),
		uimage.WithBaseArchive(uimage.DefaultRamfs()),
		uimage.WithBusyboxCommands(cmds...),
		uimage.WithInit("init"),
		uimage.WithUinit("hostd"),
		uimage.WithShell("gosh"),
		uimage.WithCPIOOutput(out),
	)
	if err != nil {
		return "", false, fmt.Errorf("build initramfs with mkuimage (source %s): %w", cfg.SourceDir, err)
	}
	if cached == "" {
		return out, false, nil
	}
	// Into the cache atomically: a half-written archive is never found.
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return "", false, fmt.Errorf("create initramfs cache: %w", err)
	}
	if err := fsutil.CopyFile(out, cached); err != nil {
		return "", false, fmt.Errorf("fill initramfs cache: %w", err)
	}
	return out, false, nil
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
