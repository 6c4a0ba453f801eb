package hostd

import (
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/input"
)

// TestRadioKeys: the airplane key's press (not its release or repeat) is
// read, as the Wi-Fi key's.
func TestRadioKeys(t *testing.T) {
	b := inputEvents([3]int{input.EvKey, keyRfkill, 1}, [3]int{input.EvKey, keyRfkill, 2}, [3]int{input.EvKey, keyRfkill, 0},
		[3]int{input.EvKey, keyWLAN, 1}, [3]int{input.EvKey, keyVolumeUp, 1})
	n := 0
	readRadioKeys(strings.NewReader(string(b)), func() { n++ })
	if n != 2 {
		t.Errorf("%d presses, want 2", n)
	}
}
