package hostd

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/thinhost/thinhost/hostd/input"
)

func TestVolumeKeys(t *testing.T) {
	if got := PickVolumeControl("Simple mixer control 'Headphone',0\nSimple mixer control 'Master',0\nSimple mixer control 'PCM',0\n"); got != "Master" {
		t.Errorf("PickVolumeControl = %q, want Master", got)
	}
	if got := PickVolumeControl("Simple mixer control 'PCM',0\n"); got != "PCM" {
		t.Errorf("PickVolumeControl (USB) = %q", got)
	}
	if got := PickVolumeControl("Simple mixer control 'Capture',0\n"); got != "" {
		t.Errorf("PickVolumeControl (no output control) = %q", got)
	}
	if got := VolumeArgs("PCH", "Master", keyVolumeUp); !slices.Equal(got, []string{"-q", "-c", "PCH", "sset", "Master", "5%+", "unmute"}) {
		t.Errorf("up: %q", got)
	}
	if got := VolumeArgs("PCH", "Master", keyMute); !slices.Equal(got, []string{"-q", "-c", "PCH", "sset", "Master", "toggle"}) {
		t.Errorf("mute: %q", got)
	}
	stream := inputEvents(
		[3]int{input.EvKey, keyVolumeUp, 1}, [3]int{input.EvKey, keyVolumeUp, 2}, [3]int{input.EvKey, keyVolumeUp, 0},
		[3]int{input.EvKey, keyMute, 1}, [3]int{input.EvKey, keyMute, 2}, [3]int{input.EvKey, keyMute, 0},
		[3]int{input.EvKey, keyVolumeDown, 1}, [3]int{input.EvKey, 30, 1}, [3]int{0, 0, 0})
	var got []uint16
	if err := readVolumeKeys(bytes.NewReader(stream), func(code uint16) { got = append(got, code) }); err != io.EOF {
		t.Fatal(err)
	}
	// Autorepeat steps the volume, but toggles mute only once a press.
	if want := []uint16{keyVolumeUp, keyVolumeUp, keyMute, keyVolumeDown}; !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
}

// inputEvents encodes events as the kernel gives them: {type, code,
// value} each.
func inputEvents(evs ...[3]int) []byte {
	var out []byte
	for _, e := range evs {
		out = input.AppendEvent(out, uint16(e[0]), uint16(e[1]), int32(e[2]))
	}
	return out
}
