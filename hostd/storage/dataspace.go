package storage

import (
	"fmt"

	"github.com/thinhost/thinhost/internal/units"
)

// LowSpace is the free space on the data partition below which hostd
// warns: guests' disks grow into it, and QEMU pauses a guest whose write
// finds none. 5% of the partition, at most 20 GiB; where 5% is under
// 2 GiB, 2 GiB, but never more than a tenth of a small partition.
func LowSpace(total int64) int64 {
	t := total / 20
	if t < 2<<30 {
		t = 2 << 30
		if tenth := total / 10; t > tenth {
			t = tenth
		}
	}
	if t > 20<<30 {
		t = 20 << 30
	}
	return t
}

// SpaceState follows the data partition's free space with hysteresis: it
// turns low below LowSpace, and back once there is half as much again.
type SpaceState struct {
	low bool
}

// Observe takes a reading and returns a console message when the state
// changes ("" otherwise), and whether it is low now.
func (s *SpaceState) Observe(free, total int64) (msg string, low bool) {
	limit := LowSpace(total)
	switch {
	case !s.low && free < limit:
		s.low = true
		return fmt.Sprintf("warning: the data partition has %s free of %s: guests pause when it is full; free space on the shares (`thinhost ctl status` shows what the guests' disks take)",
			units.Bytes(free), units.Bytes(total)), true
	case s.low && free >= limit+limit/2:
		s.low = false
		return fmt.Sprintf("the data partition has %s free again", units.Bytes(free)), false
	}
	return "", s.low
}
