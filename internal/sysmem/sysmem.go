// Package sysmem reads the kernel's memory figures (/proc/meminfo), for
// hostd's status and the guests' sizes, and for `thinhost vm args` on a
// build machine.
package sysmem

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Info holds /proc/meminfo's figures, in bytes (0: not reported).
type Info struct {
	Total, Available int64
}

// Parse reads /proc/meminfo's text ("MemTotal:  16318164 kB").
func Parse(text string) Info {
	var m Info
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kb < 0 || kb > 1<<52 {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			m.Total = kb << 10
		case "MemAvailable:":
			m.Available = kb << 10
		}
	}
	return m
}

// Read reads /proc/meminfo.
func Read() (Info, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return Info{}, fmt.Errorf("read memory figures: %w", err)
	}
	return Parse(string(b)), nil
}
