package storage

import (
	"strings"
	"testing"
)

func TestLowSpace(t *testing.T) {
	for _, c := range []struct{ total, want int64 }{
		{8 << 30, (8 << 30) / 10}, {30 << 30, 2 << 30}, {100 << 30, 5 << 30}, {1 << 40, 20 << 30},
		// A test image's 736 MiB: a tenth, not 2 GiB (more than it has).
		{736 << 20, (736 << 20) / 10},
	} {
		if got := LowSpace(c.total); got != c.want {
			t.Errorf("LowSpace(%d) = %d, want %d", c.total, got, c.want)
		}
	}
	var s SpaceState
	total := int64(100 << 30)
	steps := []struct {
		free int64
		msg  string
		low  bool
	}{
		{50 << 30, "", false},
		{4 << 30, "warning: the data partition has 4 GiB free of 100 GiB", true},
		{3 << 30, "", true},
		{6 << 30, "", true}, // above the limit, below the limit and a half
		{8 << 30, "the data partition has 8 GiB free again", false},
		{7 << 30, "", false},
	}
	for i, st := range steps {
		msg, low := s.Observe(st.free, total)
		if low != st.low || (st.msg == "") != (msg == "") || !strings.HasPrefix(msg, st.msg) {
			t.Errorf("step %d (%d free): %q %v, want %q %v", i, st.free, msg, low, st.msg, st.low)
		}
	}
}
