package power

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/thinhost/thinhost/hostd/input"
)

func TestReadPowerKey(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(inputEvents([3]int{input.EvKey, 30, 1}))       // KEY_A
	stream.Write(inputEvents([3]int{0x00, 0, 0}))               // EV_SYN
	stream.Write(inputEvents([3]int{input.EvKey, keyPower, 0})) // release
	if err := readPowerKey(bytes.NewReader(stream.Bytes())); err == nil {
		t.Error("no press in the stream, yet readPowerKey returned nil")
	}
	stream.Write(inputEvents([3]int{input.EvKey, keyPower, 1}))
	if err := readPowerKey(bytes.NewReader(stream.Bytes())); err != nil {
		t.Errorf("press not seen: %v", err)
	}
}

func TestFindPowerButtons(t *testing.T) {
	class := t.TempDir()
	mk := func(ev, name string) {
		d := filepath.Join(class, ev, "device")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "name"), []byte(name+"\n"), 0o644)
	}
	mk("event0", "Power Button")
	mk("event1", "AT Translated Set 2 keyboard")
	mk("event2", "Power Button")
	os.MkdirAll(filepath.Join(class, "input0"), 0o755)
	got, err := findPowerButtons(class)
	if err != nil || !cmp.Equal(got, []string{"event0", "event2"}) {
		t.Errorf("findPowerButtons = %v, %v", got, err)
	}
}
