package power

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/hostd/input"
)

// The lid: a laptop closed is a laptop put away. hostd reads the lid
// switch's input events; on closing it pauses the guests, syncs, and
// suspends the host; on waking it lets the guests continue.

// What closing the lid does (host { lid = ... }).
const (
	LidSuspend  = "suspend"
	LidPowerOff = "poweroff"
	LidIgnore   = "ignore"
)

// Linux input event constants for switches.
const (
	evSw  = 0x05
	swLid = 0x00
)

// ReadLid reads input events from r (a lid switch's event device) and
// calls changed with the lid's new state on each change, until r ends.
func ReadLid(r io.Reader, changed func(closed bool)) error {
	return input.ReadEvents(r, func(typ, code uint16, value int32) bool {
		if typ == evSw && code == swLid {
			changed(value != 0)
		}
		return false
	})
}

// SleepState picks how the host sleeps from /sys/power/state and
// /sys/power/mem_sleep: deep (S3, suspend to RAM: the least power, the
// guests' memory kept) where the firmware offers it, else s2idle (what
// current laptops offer: "Modern Standby"), else freeze. It returns what
// to write to mem_sleep ("" for nothing) and to state, or an error when
// the kernel offers no sleep at all.
func SleepState(state, memSleep string) (mem, write string, err error) {
	states := strings.Fields(state)
	has := func(s string) bool {
		for _, x := range states {
			if x == s {
				return true
			}
		}
		return false
	}
	if has("mem") {
		modes := strings.Fields(memSleep)
		for _, want := range []string{"deep", "s2idle"} {
			for _, m := range modes {
				if strings.Trim(m, "[]") == want {
					return want, "mem", nil
				}
			}
		}
		return "", "mem", nil
	}
	if has("freeze") {
		return "", "freeze", nil
	}
	return "", "", fmt.Errorf("the kernel offers no sleep state (/sys/power/state: %q)", strings.TrimSpace(state))
}

// Sleeper is what a suspend needs from the host, injected so the sequence
// is tested without sleeping.
type Sleeper struct {
	Log *slog.Logger
	// PauseGuests stops every running guest's CPUs (QMP stop) and says
	// which it paused.
	PauseGuests func(ctx context.Context) []string
	// ResumeGuests lets the paused guests continue (QMP cont).
	ResumeGuests func(ctx context.Context, names []string)
	// Sync flushes the filesystems.
	Sync func()
	// Suspend puts the host to sleep and returns when it woke.
	Suspend func() error
}

// ErrSuspend wraps a suspend that did not happen; the guests continue.
var ErrSuspend = errors.New("the host did not suspend")

// Sleep runs the suspend sequence: the guests paused (their disks and
// clocks stand still, so nothing of theirs is half written), the
// filesystems synced (a laptop that never wakes, its battery empty, loses
// nothing written), the host suspended; then, awake or not, the guests
// continue.
func (s *Sleeper) Sleep(ctx context.Context) error {
	paused := s.PauseGuests(ctx)
	s.Log.Info("suspending", "guests_paused", paused)
	s.Sync()
	err := s.Suspend()
	s.ResumeGuests(ctx, paused)
	if err != nil {
		s.Log.Error("suspend failed; the guests continue", "err", err)
		return fmt.Errorf("%w: %v", ErrSuspend, err)
	}
	s.Log.Info("resumed", "guests_continued", paused)
	return nil
}

// findLids lists the eventN devices that report a lid switch (SW_LID in
// their capabilities/sw bitmap).
func findLids(class string) ([]string, error) {
	return input.Find(class, func(dev string) bool {
		b, err := os.ReadFile(filepath.Join(dev, "capabilities", "sw"))
		if err != nil {
			return false
		}
		// Words of hex, the last the lowest bits.
		words := strings.Fields(string(b))
		if len(words) == 0 {
			return false
		}
		low, err := strconv.ParseUint(words[len(words)-1], 16, 64)
		return err == nil && low&(1<<swLid) != 0
	})
}

// WatchLids sends the lid's new state on changed each time a lid switch
// moves; it says how many it watches.
func WatchLids(ctx context.Context, log *slog.Logger, changed chan<- bool) int {
	devs, err := findLids(input.Class)
	if err != nil {
		log.Warn("find the lid switch", "err", err)
		return 0
	}
	return input.Watch(ctx, log, "the lid", devs, func(_ string, f *os.File) {
		_ = ReadLid(f, func(closed bool) {
			select {
			case changed <- closed:
			case <-ctx.Done():
			}
		})
	})
}

// Suspend writes the sleep state SleepState picks and returns once
// the host woke (the write returns then).
func Suspend() error {
	state, err := os.ReadFile("/sys/power/state")
	if err != nil {
		return err
	}
	memSleep, _ := os.ReadFile("/sys/power/mem_sleep")
	mem, write, err := SleepState(string(state), string(memSleep))
	if err != nil {
		return err
	}
	if mem != "" {
		if err := os.WriteFile("/sys/power/mem_sleep", []byte(mem), 0); err != nil {
			return fmt.Errorf("choose %s sleep: %w", mem, err)
		}
	}
	if err := os.WriteFile("/sys/power/state", []byte(write), 0); err != nil {
		return fmt.Errorf("suspend (%s): %w", write, err)
	}
	return nil
}
