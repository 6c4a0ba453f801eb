package hostd

import "strings"

// Volume keys (include/uapi/linux/input-event-codes.h).
const (
	keyMute       = 113
	keyVolumeDown = 114
	keyVolumeUp   = 115
)

// VolumeStep is how far one press moves the volume, as amixer takes it.
const VolumeStep = "5%"

// MixerDefaults are the output controls hostd unmutes, at
// MixerDefaultLevel, the first time it meets a card (ALSA drivers start
// muted); a missing one is skipped.
var MixerDefaults = []string{"Master", "PCM", "Speaker", "Headphone", "Front"}

// MixerDefaultLevel is their level then.
const MixerDefaultLevel = "80%"

// volumeControls are the mixer controls the volume keys move, the first
// the card has: HD Audio's Master, else what USB and SOF cards call it.
var volumeControls = []string{"Master", "PCM", "Speaker", "Headphone"}

// PickVolumeControl chooses from amixer's scontrols output ("Simple mixer
// control 'Master',0" per line) the control the volume keys move.
func PickVolumeControl(scontrols string) string {
	have := map[string]bool{}
	for _, line := range strings.Split(scontrols, "\n") {
		if _, rest, ok := strings.Cut(line, "'"); ok {
			if name, _, ok := strings.Cut(rest, "'"); ok {
				have[name] = true
			}
		}
	}
	for _, c := range volumeControls {
		if have[c] {
			return c
		}
	}
	return ""
}

// VolumeArgs are amixer's arguments for a key: up, down or mute
// (toggle), on card's control.
func VolumeArgs(card, control string, code uint16) []string {
	base := []string{"-q", "-c", card, "sset", control}
	switch code {
	case keyVolumeUp:
		return append(base, VolumeStep+"+", "unmute")
	case keyVolumeDown:
		return append(base, VolumeStep+"-")
	case keyMute:
		return append(base, "toggle")
	}
	return nil
}
