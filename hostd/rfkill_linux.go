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
)

// rfkillClass is where the kernel lists its radio switches.
const rfkillClass = "/sys/class/rfkill"

// wifiRadios are the Wi-Fi radio switches now (nil when none can be read).
func wifiRadios(log *slog.Logger) []Radio {
	r, err := ReadRadios(rfkillClass, "wlan")
	if err != nil {
		log.Warn("radio switches", "err", err)
	}
	return r
}

// switchWifiOn switches the Wi-Fi radios on where software turned them
// off (a platform driver's remembered airplane mode, rfkill.default_state=0
// on the command line): the profile asks for Wi-Fi. A hard switch stays
// as it is, and the status says so.
func switchWifiOn(log *slog.Logger, why string) {
	changed, err := SetSoft(wifiRadios(log), false)
	if err != nil {
		log.Warn("switch the Wi-Fi radio on", "err", err)
	}
	if len(changed) > 0 {
		log.Info("Wi-Fi radio switched on", "radios", changed, "why", why)
	}
}

// watchRadioKeys switches the Wi-Fi radios off and on with the airplane
// (and Wi-Fi) key of every input device that has one — where the laptop
// leaves that to the system rather than doing it in its firmware; it
// returns how many devices it reads.
func watchRadioKeys(ctx context.Context, log *slog.Logger, console io.Writer) int {
	devs, err := input.Find(input.Class, func(dev string) bool {
		b, err := os.ReadFile(filepath.Join(dev, "capabilities", "key"))
		return err == nil && (keyboard.HasKeys(string(b), keyRfkill) || keyboard.HasKeys(string(b), keyWLAN))
	})
	if err != nil || len(devs) == 0 {
		return 0
	}
	return input.Watch(ctx, log, "airplane key", devs, func(_ string, f *os.File) {
		_ = readRadioKeys(f, func() {
			radios := wifiRadios(log)
			if len(radios) == 0 {
				return
			}
			// A radio switched off by a switch or the firmware: the
			// laptop handles the key itself, and a second switch here
			// would undo it.
			for _, r := range radios {
				if r.Hard {
					return
				}
			}
			// Off when any is on, else on: one press is airplane mode.
			off := !AnySoft(radios)
			if _, err := SetSoft(radios, off); err != nil {
				log.Warn("airplane key", "err", err)
				return
			}
			state := "on"
			if off {
				state = "off (airplane mode)"
			}
			io.WriteString(console, "thinhost: wifi: radio "+state+"\n")
			log.Info("airplane key", "wifi", strings.TrimSuffix(state, " (airplane mode)"))
		})
	})
}

// readRadioKeys calls press for each press of the airplane or Wi-Fi key
// read from r, until r ends.
func readRadioKeys(r io.Reader, press func()) error {
	return input.ReadEvents(r, func(typ, code uint16, value int32) bool {
		if typ == input.EvKey && value == 1 && (code == keyRfkill || code == keyWLAN) {
			press()
		}
		return false
	})
}
