package hostd

import (
	"testing"

	"github.com/thinhost/thinhost/hostd/supervise"
)

// TestProblems: recorded problems come first; a service waiting to
// restart or ended with a failure is a problem, one that ended well or
// runs is not.
func TestProblems(t *testing.T) {
	got := Problems([]string{"data partition not mounted: no partition named \"thinhost-data\""}, []supervise.Status{
		{Name: "smbd", State: supervise.Running},
		{Name: "hello", State: supervise.Stopped, LastExit: "exit status 0"},
		{Name: "stamp", State: supervise.Stopped, LastExit: "exit status 2"},
		{Name: "vm-guest", State: supervise.Backoff, LastExit: "exit status 1", Restarts: 3},
		{Name: "fresh", State: supervise.Starting},
	})
	want := []string{
		`data partition not mounted: no partition named "thinhost-data"`,
		"service stamp ended: exit status 2",
		"service vm-guest is restarting after exit status 1 (3 restarts so far)",
	}
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d = %q, want %q", i, got[i], want[i])
		}
	}
	if l := HealthLine(nil); l != HealthOK {
		t.Errorf("no problems: %q", l)
	}
	if l := HealthLine(want[1:]); l != "thinhost: health: DEGRADED: service stamp ended: exit status 2; service vm-guest is restarting after exit status 1 (3 restarts so far)" {
		t.Errorf("health line = %q", l)
	}
}
