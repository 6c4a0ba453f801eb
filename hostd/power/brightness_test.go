package power

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thinhost/thinhost/hostd/input"
)

func TestBrightnessStep(t *testing.T) {
	for _, c := range []struct {
		cur, max int
		up       bool
		want     int
	}{
		{50, 100, true, 55}, {98, 100, true, 100}, {100, 100, true, 100},
		{50, 100, false, 45}, {3, 100, false, 1}, {1, 100, false, 1},
		{19000, 19393, true, 19393}, {5, 7, true, 6}, {1, 7, false, 1}, {10, 0, true, 10},
	} {
		if got := BrightnessStep(c.cur, c.max, c.up); got != c.want {
			t.Errorf("BrightnessStep(%d, %d, %v) = %d, want %d", c.cur, c.max, c.up, got, c.want)
		}
	}
}

func TestPickAndStepBacklight(t *testing.T) {
	class := t.TempDir()
	mk := func(name, typ string, cur, max int) {
		d := filepath.Join(class, name)
		_ = os.MkdirAll(d, 0o755)
		_ = os.WriteFile(filepath.Join(d, "type"), []byte(typ+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(d, "brightness"), []byte(strconv.Itoa(cur)+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(d, "max_brightness"), []byte(strconv.Itoa(max)+"\n"), 0o644)
	}
	if PickBacklight(class) != "" {
		t.Error("a backlight where there is none")
	}
	mk("intel_backlight", "raw", 960, 19200)
	if got := PickBacklight(class); filepath.Base(got) != "intel_backlight" {
		t.Errorf("raw alone: %q", got)
	}
	mk("acpi_video0", "firmware", 7, 15)
	mk("thinkpad_screen", "platform", 3, 15)
	got := PickBacklight(class)
	if filepath.Base(got) != "acpi_video0" {
		t.Fatalf("firmware before platform before raw: %q", got)
	}
	if level, err := StepBacklight(got, true); err != nil || level != 8 {
		t.Errorf("up: %d %v", level, err)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "brightness")); strings.TrimSpace(string(b)) != "8" {
		t.Errorf("written %q", b)
	}
}

// inputEvents are the kernel's input_event structs for (type, code,
// value) triples, as an input device reads.
// inputEvents encodes events as the kernel gives them: {type, code,
// value} each.
func inputEvents(evs ...[3]int) []byte {
	var out []byte
	for _, e := range evs {
		out = input.AppendEvent(out, uint16(e[0]), uint16(e[1]), int32(e[2]))
	}
	return out
}

func TestReadBrightnessKeys(t *testing.T) {
	var ups, downs int
	stream := inputEvents(
		[3]int{input.EvKey, keyBrightnessUp, 1}, [3]int{input.EvKey, keyBrightnessUp, 2}, [3]int{input.EvKey, keyBrightnessUp, 0},
		[3]int{input.EvKey, keyBrightnessDown, 1}, [3]int{input.EvKey, 30, 1}, [3]int{0, 0, 0})
	_ = readBrightnessKeys(strings.NewReader(string(stream)), func(up bool) {
		if up {
			ups++
		} else {
			downs++
		}
	})
	if ups != 2 || downs != 1 {
		t.Errorf("ups %d downs %d, want 2 (press and repeat) and 1", ups, downs)
	}
}
