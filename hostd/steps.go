package hostd

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// bootSteps times the steps of bringing the host up, each from the end of
// the one before: where the boot's time goes, in the ready log line and
// bench/foundation.sh's figures.
type bootSteps struct {
	mu    sync.Mutex
	last  time.Time
	steps []bootStep
	now   func() time.Time
}

type bootStep struct {
	name string
	took time.Duration
}

func newBootSteps(start time.Time, now func() time.Time) *bootSteps {
	return &bootSteps{last: start, now: now}
}

// done ends step name: it took the time since the last step ended.
func (s *bootSteps) done(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	s.steps = append(s.steps, bootStep{name, t.Sub(s.last)})
	s.last = t
}

// String lists the steps as "name 1.2s, other 40ms", rounded to the
// millisecond.
func (s *bootSteps) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]string, 0, len(s.steps))
	for _, st := range s.steps {
		parts = append(parts, st.name+" "+st.took.Round(time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

// cpuTimes is the first ("cpu") line of /proc/stat: the time all CPUs
// spent idle (idle and iowait) and in all, in clock ticks.
type cpuTimes struct{ idle, total uint64 }

// parseCPUTimes reads cpuTimes from /proc/stat's content.
func parseCPUTimes(stat string) (cpuTimes, bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		// guest and guest_nice (the 9th and 10th) are counted in user
		// and nice already.
		if i < 8 {
			t.total += n
		}
		if i == 3 || i == 4 {
			t.idle += n
		}
	}
	return t, true
}

// busy is the share of the CPUs' time spent working between t and later,
// as a percentage.
func (t cpuTimes) busy(later cpuTimes) int {
	total := later.total - t.total
	if later.total <= t.total || later.idle < t.idle {
		return 0
	}
	return int(100 * (total - (later.idle - t.idle)) / total)
}
