package hostd

import (
	"fmt"
	"sort"
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

// procCPU is one process's CPU time from /proc/PID/stat, in clock ticks:
// its own (user and system: a module's init runs in the system time of
// whoever loads it) and that of its children it waited for.
type procCPU struct {
	comm                string
	ppid                int
	user, sys, children uint64
}

// parseProcStat reads procCPU from /proc/PID/stat's content (the command
// name in parentheses may hold spaces and parentheses itself).
func parseProcStat(stat string) (procCPU, bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procCPU{}, false
	}
	f := strings.Fields(stat[end+1:])
	// state ppid ... utime (14th field of the line, 12th here) stime cutime cstime
	if len(f) < 15 {
		return procCPU{}, false
	}
	var n [5]uint64
	for i, k := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return procCPU{}, false
		}
		n[i] = v
	}
	return procCPU{comm: stat[open+1 : end], ppid: int(n[0]), user: n[1], sys: n[2], children: n[3] + n[4]}, true
}

// cpuByProgram sums the CPU time of procs by program: the kernel's
// threads (children of kthreadd, PID 2) as one, and what the children a
// program waited for used apart ("NAME's children"), largest first, as
// "name 1.2s (0.4s user)" at 100 ticks a second (the rest in the kernel).
func cpuByProgram(procs []procCPU) string {
	sum, user := map[string]uint64{}, map[string]uint64{}
	for _, p := range procs {
		name := p.comm
		if p.ppid == 2 {
			name = "kernel threads"
		}
		sum[name] += p.user + p.sys
		user[name] += p.user
		if p.children > 0 {
			sum[name+"'s children"] += p.children
		}
	}
	names := make([]string, 0, len(sum))
	for n, v := range sum {
		if v > 0 {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if sum[names[i]] != sum[names[j]] {
			return sum[names[i]] > sum[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		part := fmt.Sprintf("%s %.2fs", n, float64(sum[n])/100)
		if u := user[n]; u > 0 && u < sum[n] {
			part += fmt.Sprintf(" (%.2fs user)", float64(u)/100)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}
