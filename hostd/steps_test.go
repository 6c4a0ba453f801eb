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
