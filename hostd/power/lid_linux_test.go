package power

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/thinhost/thinhost/hostd/input"
)

// TestReadLid: closing and opening the lid, among other switches and
// sync events, are reported in order; a torn event ends the reading.
func TestReadLid(t *testing.T) {
	var stream []byte
	for _, e := range [][]byte{
		inputEvents([3]int{evSw, swLid, 1}), inputEvents([3]int{0, 0, 0}), // closed, then SYN_REPORT
		inputEvents([3]int{evSw, 0x05, 1}), // SW_DOCK: not the lid
		inputEvents([3]int{input.EvKey, keyPower, 1}),
		inputEvents([3]int{evSw, swLid, 0}), inputEvents([3]int{0, 0, 0}),
	} {
		stream = append(stream, e...)
	}
	stream = append(stream, 1, 2, 3) // torn
	var got []bool
	err := ReadLid(bytes.NewReader(stream), func(closed bool) { got = append(got, closed) })
	if !reflect.DeepEqual(got, []bool{true, false}) {
		t.Errorf("lid changes %v, want closed then open", got)
	}
	if err == nil {
		t.Error("a torn event should end the reading with an error")
	}
}

// TestFindLids: an event device whose switches include SW_LID (bit 0 of
// the last word) is a lid; a dock switch alone, or no switches, is not.
func TestFindLids(t *testing.T) {
	class := t.TempDir()
	for name, sw := range map[string]string{"event0": "1\n", "event1": "20\n", "event2": "0\n", "event3": "1 21\n", "mouse0": "1\n"} {
		dir := filepath.Join(class, name, "device", "capabilities")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "sw"), []byte(sw), 0o644)
	}
	os.MkdirAll(filepath.Join(class, "event4", "device"), 0o755) // no capabilities
	got, err := findLids(class)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"event0", "event3"}) {
		t.Errorf("lids %v, want event0 and event3", got)
	}
}

// TestSleepState: deep where offered, else s2idle, else freeze; nothing
// to sleep in is an error.
func TestSleepState(t *testing.T) {
	for _, c := range []struct{ state, mem, wantMem, wantWrite string }{
		{"freeze mem disk\n", "[s2idle] deep\n", "deep", "mem"},
		{"freeze mem\n", "[s2idle]\n", "s2idle", "mem"},
		{"freeze mem\n", "", "", "mem"},
		{"freeze\n", "", "", "freeze"},
	} {
		mem, write, err := SleepState(c.state, c.mem)
		if err != nil || mem != c.wantMem || write != c.wantWrite {
			t.Errorf("SleepState(%q, %q) = %q, %q, %v; want %q, %q", c.state, c.mem, mem, write, err, c.wantMem, c.wantWrite)
		}
	}
	if _, _, err := SleepState("disk\n", ""); err == nil {
		t.Error("no sleep state: want an error")
	}
}

// TestSleep: the guests are paused before the sync and the suspend, and
// the same guests continue after it, also when the suspend failed.
func TestSleep(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var steps []string
		s := &Sleeper{
			Log: slog.New(slog.DiscardHandler),
			PauseGuests: func(context.Context) []string {
				steps = append(steps, "pause")
				return []string{"windows"}
			},
			ResumeGuests: func(_ context.Context, names []string) {
				steps = append(steps, "resume "+names[0])
			},
			Sync: func() { steps = append(steps, "sync") },
			Suspend: func() error {
				steps = append(steps, "suspend")
				if fail {
					return errors.New("EBUSY")
				}
				return nil
			},
		}
		err := s.Sleep(context.Background())
		if want := []string{"pause", "sync", "suspend", "resume windows"}; !reflect.DeepEqual(steps, want) {
			t.Errorf("fail=%v: steps %v, want %v", fail, steps, want)
		}
		if fail != errors.Is(err, ErrSuspend) {
			t.Errorf("fail=%v: err %v", fail, err)
		}
	}
}
