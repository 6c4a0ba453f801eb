package hostd

import (
	"strings"
	"testing"
)

// TestRadioKeys: the airplane key's press (not its release or repeat) is
// read, as the Wi-Fi key's.
func TestRadioKeys(t *testing.T) {
	b := inputEvents([3]int{evKey, keyRfkill, 1}, [3]int{evKey, keyRfkill, 2}, [3]int{evKey, keyRfkill, 0},
		[3]int{evKey, keyWLAN, 1}, [3]int{evKey, keyVolumeUp, 1})
	n := 0
	readRadioKeys(strings.NewReader(string(b)), func() { n++ })
	if n != 2 {
		t.Errorf("%d presses, want 2", n)
	}
}
