package testguest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BareWidth and BareHeight are the video mode the bare test guest sets
// and paints (bare/guest.c), the emulated laptop's panel size.
const (
	BareWidth  = 1280
	BareHeight = 800
)

// BuildBare compiles the bare test guest (bare/guest.c) with the build
// machine's gcc into a 32-bit multiboot kernel at out: the test guest for
// the emulated laptop, where a guest runs under TCG inside TCG and the
// Linux test guest takes minutes to boot while this one is up at once. It
// says "up", paints the pattern (PatternTop over PatternBottom) at
// BareWidth x BareHeight, reports keys ("key 30", "ctrl-alt-del") and
// powers off on the ACPI power button, as the Linux test guest does.
// srcDir is the thinhost module's source.
func BuildBare(ctx context.Context, srcDir, out string) error {
	dir := filepath.Join(srcDir, "internal", "testguest", "bare")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "gcc", "-m32", "-march=i686", "-ffreestanding", "-fno-pic", "-no-pie",
		"-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-nostdlib", "-static", "-O2", "-Wall", "-Werror",
		"-Wl,-T,guest.ld", "-Wl,--no-warn-rwx-segments", "-Wl,--build-id=none", "-o", out, "guest.c")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build bare test guest (gcc, from Debian's gcc package): %w: %s", err, b)
	}
	return nil
}
