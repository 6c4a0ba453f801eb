package power

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/thinhost/thinhost/hostd/input"
	"github.com/thinhost/thinhost/hostd/keyboard"
)

// WatchBrightnessKeys moves the backlight with the brightness keys of every
// input device that has them (the ACPI video bus, a vendor's hotkey
// driver, the keyboard), reading beside whoever else reads them (QEMU's
// SDL, for a guest on the panel: a guest without a backlight of its own
// ignores them). The kernel's own handling of the ACPI video keys is
// turned off first, so one press is one step. It says how many devices
// it watches.
func WatchBrightnessKeys(ctx context.Context, log *slog.Logger) int {
	backlight := PickBacklight("/sys/class/backlight")
	if backlight == "" {
		return 0
	}
	devs, err := input.Find(input.Class, func(dev string) bool {
		b, err := os.ReadFile(filepath.Join(dev, "capabilities", "key"))
		return err == nil && keyboard.HasKeys(string(b), keyBrightnessDown, keyBrightnessUp)
	})
	if err != nil || len(devs) == 0 {
		return 0
	}
	if err := os.WriteFile("/sys/module/video/parameters/brightness_switch_enabled", []byte("N"), 0o644); err != nil && !os.IsNotExist(err) {
		log.Warn("take the brightness keys from the kernel's ACPI video driver", "err", err)
	}
	n := input.Watch(ctx, log, "brightness keys", devs, func(_ string, f *os.File) {
		_ = readBrightnessKeys(f, func(up bool) {
			level, err := StepBacklight(backlight, up)
			if err != nil {
				log.Warn("set the backlight", "backlight", backlight, "err", err)
				return
			}
			log.Debug("backlight", "level", level)
		})
	})
	log.Info("brightness keys move the backlight", "backlight", backlight, "devices", n)
	return n
}

// readBrightnessKeys calls step for each press and autorepeat of a
// brightness key read from r, until r ends.
func readBrightnessKeys(r io.Reader, step func(up bool)) error {
	return input.ReadEvents(r, func(typ, code uint16, value int32) bool {
		if typ == input.EvKey && value != 0 && (code == keyBrightnessUp || code == keyBrightnessDown) {
			step(code == keyBrightnessUp)
		}
		return false
	})
}
