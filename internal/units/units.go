// Package units writes sizes for people, the one way every thinhost
// command and the host's page do.
package units

import (
	"fmt"
	"strings"
)

// Bytes renders n bytes in the largest binary unit it reaches, with one
// decimal unless it is whole: "512 B", "324 KiB", "256 MiB", "14.9 GiB".
func Bytes(n int64) string {
	if n < 0 {
		return "-" + ubytes(uint64(-(n+1))+1)
	}
	return ubytes(uint64(n))
}

func ubytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	s := fmt.Sprintf("%.1f", float64(n)/float64(div))
	if s == "1024.0" && exp < 5 {
		// Rounding reached the next unit.
		s, exp = "1.0", exp+1
	}
	return strings.TrimSuffix(s, ".0") + " " + string("KMGTPE"[exp]) + "iB"
}
