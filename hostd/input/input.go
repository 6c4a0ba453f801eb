// Package input reads the kernel's input devices (evdev): finding the
// eventN devices that match, reading each in a goroutine of its own, and
// the struct input_event stream itself. The power button, the lid, and
// the brightness, volume and airplane keys are all read through it.
package input

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Event types (include/uapi/linux/input-event-codes.h), and the size of
// struct input_event on 64-bit: timeval(16) type(2) code(2) value(4).
const (
	EvSyn     = 0x00
	EvKey     = 0x01
	EvSw      = 0x05
	EventSize = 24
)

// Class is where the kernel lists input devices.
const Class = "/sys/class/input"

// Find lists the eventN devices under class whose input device (its
// sysfs directory) match accepts.
func Find(class string, match func(dev string) bool) ([]string, error) {
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

// Watch opens each of the input devices devs (eventN) and runs read on it
// in a goroutine of its own until ctx ends, which closes it; it says how
// many it opened. what names them in the log.
func Watch(ctx context.Context, log *slog.Logger, what string, devs []string, read func(dev string, f *os.File)) int {
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

// ReadEvents reads input events (struct input_event) from r and hands
// each to each until it says stop (then nil) or r ends (its error).
func ReadEvents(r io.Reader, each func(typ, code uint16, value int32) (stop bool)) error {
	buf := make([]byte, EventSize)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if each(binary.LittleEndian.Uint16(buf[16:18]), binary.LittleEndian.Uint16(buf[18:20]), int32(binary.LittleEndian.Uint32(buf[20:24]))) {
			return nil
		}
	}
}

// AppendEvent appends an input event with a zero time (the kernel stamps
// the ones written to uinput) to b.
func AppendEvent(b []byte, typ, code uint16, value int32) []byte {
	e := make([]byte, EventSize)
	binary.LittleEndian.PutUint16(e[16:], typ)
	binary.LittleEndian.PutUint16(e[18:], code)
	binary.LittleEndian.PutUint32(e[20:], uint32(value))
	return append(b, e...)
}
