package hostd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinhost/thinhost/hostd/input"
	"github.com/thinhost/thinhost/hostd/keyboard"
	"github.com/thinhost/thinhost/hostd/sysimage"
)

// amixer is alsa-utils' mixer in the system image.
const amixer = "/usr/bin/amixer"

// watchVolumeKeys moves card's volume with the volume and mute keys of
// every input device that has them, beside a guest on the panel; it
// returns how many devices it reads.
func watchVolumeKeys(ctx context.Context, log *slog.Logger, card *SoundCard) int {
	if card == nil {
		return 0
	}
	if _, err := os.Stat(sysimage.Dir + amixer); err != nil {
		return 0
	}
	out, err := sysimage.Command(ctx, amixer, "-c", card.ID, "scontrols").Output()
	control := PickVolumeControl(string(out))
	if err != nil || control == "" {
		log.Info("the volume keys move nothing: the card has no volume control", "card", card.ID, "err", err, "controls", strings.TrimSpace(string(out)))
		return 0
	}
	devs, err := input.Find(input.Class, func(dev string) bool {
		b, err := os.ReadFile(filepath.Join(dev, "capabilities", "key"))
		return err == nil && keyboard.HasKeys(string(b), keyVolumeDown, keyVolumeUp)
	})
	if err != nil || len(devs) == 0 {
		return 0
	}
	n := input.Watch(ctx, log, "volume keys", devs, func(_ string, f *os.File) {
		_ = readVolumeKeys(f, func(code uint16) {
			args := VolumeArgs(card.ID, control, code)
			if out, err := sysimage.Command(ctx, amixer, args...).CombinedOutput(); err != nil {
				log.Warn("set the volume", "card", card.ID, "control", control, "err", err, "output", strings.TrimSpace(string(out)))
			}
		})
	})
	log.Info("volume keys move the sound card's volume", "card", card.ID, "control", control, "devices", n)
	return n
}

// readVolumeKeys calls key for each press (and autorepeat of the volume
// keys) read from r, until r ends.
func readVolumeKeys(r io.Reader, key func(code uint16)) error {
	return input.ReadEvents(r, func(typ, code uint16, value int32) bool {
		if typ == input.EvKey && value != 0 && (code == keyVolumeUp || code == keyVolumeDown || (code == keyMute && value == 1)) {
			key(code)
		}
		return false
	})
}
