package hostd

import (
	"bytes"
	"io"
	"slices"
	"testing"
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
	ev := func(typ, code uint16, value int32) []byte {
		b := make([]byte, inputEvent)
		b[16], b[17] = byte(typ), byte(typ>>8)
		b[18], b[19] = byte(code), byte(code>>8)
		b[20], b[21], b[22], b[23] = byte(value), byte(value>>8), byte(value>>16), byte(value>>24)
		return b
	}
	var stream []byte
	for _, e := range [][]byte{
		ev(evKey, keyVolumeUp, 1), ev(evKey, keyVolumeUp, 2), ev(evKey, keyVolumeUp, 0),
		ev(evKey, keyMute, 1), ev(evKey, keyMute, 2), ev(evKey, keyMute, 0),
		ev(evKey, keyVolumeDown, 1), ev(evKey, 30, 1), ev(0, 0, 0),
	} {
		stream = append(stream, e...)
	}
	var got []uint16
	if err := readVolumeKeys(bytes.NewReader(stream), func(code uint16) { got = append(got, code) }); err != io.EOF {
		t.Fatal(err)
	}
	// Autorepeat steps the volume, but toggles mute only once a press.
	if want := []uint16{keyVolumeUp, keyVolumeUp, keyMute, keyVolumeDown}; !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
}
