package power

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/input"
)

// KEY_POWER (include/uapi/linux/input-event-codes.h).
const keyPower = 116

// WatchPowerButtons finds the ACPI power button input devices and sends
// their name on pressed when one is pressed. Devices may appear a moment
// after their module loads, so it looks for up to two seconds.
func WatchPowerButtons(ctx context.Context, log *slog.Logger, pressed chan<- string) (int, error) {
	var devs []string
	deadline := time.Now().Add(2 * time.Second)
	for {
		var err error
		devs, err = findPowerButtons(input.Class)
		if err != nil {
			return 0, err
		}
		if len(devs) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return input.Watch(ctx, log, "power button", devs, func(dev string, f *os.File) {
		if err := readPowerKey(f); err == nil {
			select {
			case pressed <- dev:
			default:
			}
		}
	}), nil
}

// findPowerButtons lists eventN devices whose name is "Power Button".
func findPowerButtons(class string) ([]string, error) {
	return input.Find(class, func(dev string) bool {
		name, err := os.ReadFile(filepath.Join(dev, "name"))
		return err == nil && strings.TrimSpace(string(name)) == "Power Button"
	})
}

// readPowerKey returns nil when a KEY_POWER press is read from r.
func readPowerKey(r io.Reader) error {
	return input.ReadEvents(r, func(typ, code uint16, value int32) bool {
		return typ == input.EvKey && code == keyPower && value == 1
	})
}
