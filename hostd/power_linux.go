package hostd

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Linux input event constants (include/uapi/linux/input-event-codes.h).
const (
	evKey      = 0x01
	keyPower   = 116
	inputEvent = 24 // struct input_event on 64-bit: timeval(16) type(2) code(2) value(4)
)

// watchPowerButtons finds the ACPI power button input devices and sends
// their name on pressed when one is pressed. Devices may appear a moment
// after their module loads, so it looks for up to two seconds.
func watchPowerButtons(ctx context.Context, log *slog.Logger, pressed chan<- string) (int, error) {
	var devs []string
	deadline := time.Now().Add(2 * time.Second)
	for {
		var err error
		devs, err = findPowerButtons("/sys/class/input")
		if err != nil {
			return 0, err
		}
		if len(devs) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return readInputs(ctx, log, "power button", devs, func(dev string, f *os.File) {
		if err := readPowerKey(f); err == nil {
			select {
			case pressed <- dev:
			default:
			}
		}
	}), nil
}

// readInputs opens each of the input devices devs (eventN) and runs read
// on it in a goroutine of its own until ctx ends, which closes it; it
// says how many it opened. what names them in the log.
func readInputs(ctx context.Context, log *slog.Logger, what string, devs []string, read func(dev string, f *os.File)) int {
	n := 0
	for _, ev := range devs {
		dev := filepath.Join("/dev/input", ev)
		f, err := os.Open(dev)
		if err != nil {
			log.Warn("open "+what, "device", dev, "err", err)
			continue
		}
		n++
		log.Info("watching "+what, "device", dev)
		go func() {
			<-ctx.Done()
			f.Close()
		}()
		go read(dev, f)
	}
	return n
}

// findPowerButtons lists eventN devices whose name is "Power Button".
func findPowerButtons(class string) ([]string, error) {
	return findInputs(class, func(dev string) bool {
		name, err := os.ReadFile(filepath.Join(dev, "name"))
		return err == nil && strings.TrimSpace(string(name)) == "Power Button"
	})
}

// findInputs lists the eventN devices under class whose input device
// (its sysfs directory) match accepts.
func findInputs(class string, match func(dev string) bool) ([]string, error) {
	entries, err := os.ReadDir(class)
	if err != nil {
		return nil, fmt.Errorf("list input devices: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "event") && match(filepath.Join(class, e.Name(), "device")) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// readPowerKey returns nil when a KEY_POWER press is read from r.
func readPowerKey(r io.Reader) error {
	return readEvents(r, func(typ, code uint16, value int32) bool {
		return typ == evKey && code == keyPower && value == 1
	})
}

// readEvents reads input events (struct input_event) from r and hands
// each to each until it says stop (then nil) or r ends (its error).
func readEvents(r io.Reader, each func(typ, code uint16, value int32) (stop bool)) error {
	buf := make([]byte, inputEvent)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if each(binary.LittleEndian.Uint16(buf[16:18]), binary.LittleEndian.Uint16(buf[18:20]), int32(binary.LittleEndian.Uint32(buf[20:24]))) {
			return nil
		}
	}
}
