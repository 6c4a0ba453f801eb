package keyboard

import "testing"

func TestHasKeys(t *testing.T) {
	const brightnessDown, brightnessUp = 224, 225
	// Bits 224 and 225 are in the fourth word from the end, bits 32-33.
	if HasKeys("3 0 0 0", brightnessDown, brightnessUp) {
		t.Error("bits in the wrong word taken")
	}
	if !HasKeys("300000000 0 0 0", brightnessDown, brightnessUp) {
		t.Error("the brightness keys not found")
	}
	if HasKeys("100000000 0 0 0", brightnessDown, brightnessUp) {
		t.Error("only one key, yet both")
	}
	if HasKeys("", brightnessUp) || HasKeys("zz 0 0 0", brightnessUp) {
		t.Error("no bitmap, yet keys")
	}
}

// Bitmaps as a PC's keyboard, QEMU's USB keyboard and a power button
// show them in sysfs.
func TestIsKeyboard(t *testing.T) {
	for _, c := range []struct {
		bitmap string
		want   bool
	}{
		{"402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe", true}, // AT keyboard
		{"ff800000000007ff febeffdff3cfffff fffffffffffffffe", true},          // QEMU USB keyboard
		{"10000000000000 0", false},                                           // Power Button
		{"", false},
	} {
		if got := IsKeyboard(c.bitmap); got != c.want {
			t.Errorf("IsKeyboard(%q) = %v", c.bitmap, got)
		}
	}
}
