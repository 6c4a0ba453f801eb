package keyboard

import (
	"strconv"
	"strings"
)

// HasKeys says whether an input device's capabilities/key bitmap (words
// of hex, the last the lowest bits) has every one of codes.
func HasKeys(bitmap string, codes ...int) bool {
	words := strings.Fields(bitmap)
	for _, c := range codes {
		i := len(words) - 1 - c/64
		if i < 0 {
			return false
		}
		w, err := strconv.ParseUint(words[i], 16, 64)
		if err != nil || w&(1<<(c%64)) == 0 {
			return false
		}
	}
	return true
}

// IsKeyboard says whether a device with the capabilities/key bitmap is
// a keyboard to type on (letters, Enter and Space), not a power button
// or a vendor's hotkeys.
func IsKeyboard(bitmap string) bool {
	return HasKeys(bitmap, KeyA, KeyZ, KeyEnter, KeySpace, KeyLeftShift)
}
