package units

import (
	"math"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:              "0 B",
		1023:           "1023 B",
		1024:           "1 KiB",
		324 << 10:      "324 KiB",
		1536:           "1.5 KiB",
		256 << 20:      "256 MiB",
		16_000_000_000: "14.9 GiB",
		1<<20 - 1:      "1 MiB",
		3 << 40:        "3 TiB",
		-2048:          "-2 KiB",
		math.MaxInt64:  "8 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
