package power

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Brightness keys (include/uapi/linux/input-event-codes.h).
const (
	keyBrightnessDown = 224
	keyBrightnessUp   = 225
)

// PickBacklight chooses the backlight under class (/sys/class/backlight)
// the brightness keys move: a firmware (ACPI) interface before a
// platform one before a raw GPU register, as desktops choose; "" when
// the laptop has none.
func PickBacklight(class string) string {
	entries, _ := os.ReadDir(class)
	rank := map[string]int{"firmware": 0, "platform": 1, "raw": 2}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	best, bestRank := "", 99
	for _, n := range names {
		t, err := os.ReadFile(filepath.Join(class, n, "type"))
		if err != nil {
			continue
		}
		r, ok := rank[strings.TrimSpace(string(t))]
		if !ok {
			r = 3
		}
		if r < bestRank {
			best, bestRank = filepath.Join(class, n), r
		}
	}
	return best
}

// BrightnessStep is the backlight's next level from cur on a scale to
// max: a twentieth of the scale up or down, never off (the lowest level
// is a hundredth, at least 1) and never beyond max.
func BrightnessStep(cur, max int, up bool) int {
	if max <= 0 {
		return cur
	}
	step := max / 20
	if step < 1 {
		step = 1
	}
	low := (max + 99) / 100
	next := cur - step
	if up {
		next = cur + step
	}
	if next > max {
		next = max
	}
	if next < low {
		next = low
	}
	return next
}

// StepBacklight moves the backlight in dir (a /sys/class/backlight
// device) one step and returns its new level.
func StepBacklight(dir string, up bool) (int, error) {
	read := func(name string) (int, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	max, err := read("max_brightness")
	if err != nil {
		return 0, err
	}
	cur, err := read("brightness")
	if err != nil {
		return 0, err
	}
	next := BrightnessStep(cur, max, up)
	if next == cur {
		return cur, nil
	}
	return next, os.WriteFile(filepath.Join(dir, "brightness"), []byte(strconv.Itoa(next)), 0o644)
}
