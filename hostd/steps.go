package hostd

import (
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
