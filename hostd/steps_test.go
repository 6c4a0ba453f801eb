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

func TestCPUByProgram(t *testing.T) {
	var procs []procCPU
	for _, line := range []string{
		"1 (init) S 0 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 2 1000 10",
		"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0",
		"40 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0 0 0 0 0 12 0 0 20 0 1 0 3 0 0",
		"41 (kworker/1:2) I 2 0 0 0 -1 69238880 0 0 0 0 0 8 0 0 20 0 1 0 3 0 0",
		"90 (hostd) S 1 90 1 0 -1 4194560 900 0 0 0 60 80 30 15 20 0 9 0 40 1000 100",
		"150 (smbd) S 90 150 1 0 -1 4194560 900 0 0 0 50 40 0 0 20 0 1 0 100 1000 100",
		"151 (smbd (odd) name) S 150 150 1 0 -1 4194560 900 0 0 0 5 5 0 0 20 0 1 0 100 1000 100",
	} {
		p, ok := parseProcStat(line)
		if !ok {
			t.Fatalf("not parsed: %q", line)
		}
		procs = append(procs, p)
	}
	got := cpuByProgram(procs)
	want := "hostd 1.40s (0.60s user), smbd 0.90s (0.50s user), hostd's children 0.45s, kernel threads 0.20s, smbd (odd) name 0.10s (0.05s user), init 0.08s (0.05s user)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 a 12 13 14"} {
		if _, ok := parseProcStat(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
