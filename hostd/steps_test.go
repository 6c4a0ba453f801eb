package hostd

import (
	"testing"
	"time"
)

// TestBootSteps: each step takes the time since the one before ended.
func TestBootSteps(t *testing.T) {
	start := time.Unix(100, 0)
	now := start
	s := newBootSteps(start, func() time.Time { return now })
	now = now.Add(1500 * time.Millisecond)
	s.done("modules")
	now = now.Add(42*time.Millisecond + 300*time.Microsecond)
	s.done("disks")
	s.done("nothing")
	if got, want := s.String(), "modules 1.5s, disks 42ms, nothing 0s"; got != want {
		t.Errorf("steps = %q, want %q", got, want)
	}
}

func TestCPUTimes(t *testing.T) {
	before, ok := parseCPUTimes("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if !ok || before.total != 1000 || before.idle != 850 {
		t.Fatalf("parsed %+v, %v", before, ok)
	}
	// 100 ticks later: 75 of them working.
	after, ok := parseCPUTimes("cpu  160 0 65 815 60 0 0 0 7 0\n")
	if !ok {
		t.Fatal("not parsed")
	}
	if got := before.busy(after); got != 75 {
		t.Errorf("busy %d%%, want 75%%", got)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6", "cpu 1 2"} {
		if _, ok := parseCPUTimes(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	if got := after.busy(before); got != 0 {
		t.Errorf("backwards: busy %d%%", got)
	}
}
