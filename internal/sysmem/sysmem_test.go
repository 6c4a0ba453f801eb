package sysmem

import "testing"

func TestParse(t *testing.T) {
	m := Parse("MemTotal:       16318164 kB\nMemFree:         1000 kB\nMemAvailable:   12000000 kB\nBogus: x kB\nHuge: 99999999999999999999 kB\n")
	if m.Total != 16318164<<10 || m.Available != 12000000<<10 {
		t.Errorf("Parse = %+v", m)
	}
	if m := Parse("MemTotal: -5 kB\nMemAvailable: 9999999999999999 kB"); m.Total != 0 || m.Available != 0 {
		t.Errorf("nonsense figures taken: %+v", m)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("MemTotal: 1 kB\nMemAvailable: 2 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if m := Parse(s); m.Total < 0 || m.Available < 0 {
			t.Fatalf("negative: %+v", m)
		}
	})
}
