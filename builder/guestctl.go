package builder

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thinhost/thinhost"
	"github.com/thinhost/thinhost/images"
	"github.com/thinhost/thinhost/images/layout"
	"github.com/thinhost/thinhost/profiles"
)

// hasWindowsGuest says whether a guest of p gets a THINHOST drive (a
// Windows guest) on which thinhost.exe can talk to the host's API.
func hasWindowsGuest(p *profiles.Profile) bool {
	return p.Host.APIPort != 0 && slices.ContainsFunc(p.VMs, func(v *profiles.VM) bool { return strings.HasPrefix(v.OS, "windows") })
}

// guestCtl compiles thinhost for Windows (thinhost.exe: ctl and
// validate) from src, for the system image (layout.GuestCtlPath): a
// Windows guest's THINHOST drive carries it, with the guest's own token,
// so the user can see the host, map the shares and reset Windows from
// inside it. The program is kept in the cache under the hash of what it
// is compiled from (the toolchain, its settings, the source), and built
// reproducibly (-trimpath, no build ID).
func guestCtl(ctx context.Context, log *slog.Logger, src string, cacheDir string) (images.SystemFile, error) {
	key, err := thinhost.SourceKey(ctx, src, thinhost.SourceRoots, "thinhost-guest-ctl-v1 windows/amd64")
	if err != nil {
		return images.SystemFile{}, err
	}
	exe := filepath.Join(cacheDir, "guestctl", key[:32], filepath.Base(layout.GuestCtlPath))
	file := images.SystemFile{Src: exe, Dst: layout.GuestCtlPath, Package: "thinhost", Version: "windows/amd64 " + key[:12]}
	if _, err := os.Stat(exe); err == nil {
		log.Info("thinhost.exe for Windows guests from the cache", "key", key[:16])
		return file, nil
	}
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		return images.SystemFile{}, err
	}
	start := time.Now()
	log.Info("compiling thinhost.exe for Windows guests (a minute the first time)")
	tmp := exe + ".tmp"
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", tmp, "./cmd/thinhost")
	build.Dir = src
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return images.SystemFile{}, fmt.Errorf("compile thinhost.exe for Windows guests (source %s): %w\n%s", src, err, b)
	}
	if err := os.Rename(tmp, exe); err != nil {
		return images.SystemFile{}, err
	}
	log.Info("thinhost.exe for Windows guests compiled", "duration", time.Since(start).Round(time.Millisecond))
	return file, nil
}
