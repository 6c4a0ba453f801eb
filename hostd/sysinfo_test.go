package hostd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/thinhost/thinhost/hostd/api"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadTemperatures(t *testing.T) {
	zones := t.TempDir()
	writeFiles(t, zones, map[string]string{
		"thermal/thermal_zone0/type":              "acpitz\n",
		"thermal/thermal_zone0/temp":              "47000\n",
		"thermal/thermal_zone0/trip_point_0_type": "passive\n",
		"thermal/thermal_zone0/trip_point_0_temp": "95000\n",
		"thermal/thermal_zone0/trip_point_1_type": "critical\n",
		"thermal/thermal_zone0/trip_point_1_temp": "105000\n",
		"thermal/thermal_zone1/type":              "x86_pkg_temp\n",
		"thermal/thermal_zone1/temp":              "61500\n",
		// An error value and an unreadable zone are left out.
		"thermal/thermal_zone2/type": "iwlwifi_1\n",
		"thermal/thermal_zone2/temp": "-274000\n",
		"thermal/thermal_zone3/type": "broken\n",
		"hwmon/hwmon0/name":          "coretemp\n",
		"hwmon/hwmon0/temp1_input":   "60000\n",
	})
	want := []api.Temperature{{Name: "acpitz", Celsius: 47, Critical: 105}, {Name: "x86_pkg_temp", Celsius: 61.5}}
	if diff := cmp.Diff(want, ReadTemperatures(zones)); diff != "" {
		t.Errorf("thermal zones (-want +got):\n%s", diff)
	}

	// Without thermal zones, the hwmon sensors.
	mons := t.TempDir()
	writeFiles(t, mons, map[string]string{
		"hwmon/hwmon0/name":        "AC\n",
		"hwmon/hwmon1/name":        "coretemp\n",
		"hwmon/hwmon1/temp1_input": "58000\n",
		"hwmon/hwmon1/temp1_label": "Package id 0\n",
		"hwmon/hwmon1/temp1_crit":  "100000\n",
		"hwmon/hwmon1/temp2_input": "55000\n",
		"hwmon/hwmon2/name":        "nvme\n",
		"hwmon/hwmon2/temp1_input": "41850\n",
		"hwmon/hwmon2/temp1_label": "Composite\n",
		"hwmon/hwmon2/temp1_crit":  "garbage\n",
		"hwmon/hwmon2/temp2_input": "9999999\n",
	})
	want = []api.Temperature{{Name: "coretemp Package id 0", Celsius: 58, Critical: 100}, {Name: "coretemp", Celsius: 55},
		{Name: "nvme Composite", Celsius: 41.85}}
	if diff := cmp.Diff(want, ReadTemperatures(mons)); diff != "" {
		t.Errorf("hwmon (-want +got):\n%s", diff)
	}
	if got := ReadTemperatures(t.TempDir()); got != nil {
		t.Errorf("no sensors: %v", got)
	}
}

func TestReadLoad(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string][]float64{
		"0.52 1.04 1.40 2/311 9841\n": {0.52, 1.04, 1.40},
		"0.52 1.04\n":                 nil,
		"a b c\n":                     nil,
	} {
		p := filepath.Join(dir, "loadavg")
		os.WriteFile(p, []byte(content), 0o644)
		if diff := cmp.Diff(want, readLoad(p)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", content, diff)
		}
	}
	if readLoad(filepath.Join(dir, "missing")) != nil {
		t.Error("a missing file has no load")
	}
}
