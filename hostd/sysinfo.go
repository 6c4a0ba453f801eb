package hostd

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/thinhost/thinhost/hostd/api"
)

// sysClassDir is the kernel's device classes (thermal, hwmon).
const sysClassDir = "/sys/class"

// readLoad reads the 1, 5 and 15 minute load averages from
// /proc/loadavg's format; nil when it cannot.
func readLoad(path string) []float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || v < 0 {
			return nil
		}
		out[i] = v
	}
	return out
}

// ReadTemperatures reads the thermal sensors under class (/sys/class):
// the thermal zones (ACPI's, the CPU package's) with their critical trip
// point, or, where the kernel has none, the hwmon sensors (coretemp,
// k10temp, nvme). Readings outside -50..200 °C are a sensor's error
// values and are left out.
func ReadTemperatures(class string) []api.Temperature {
	var out []api.Temperature
	zones, _ := filepath.Glob(filepath.Join(class, "thermal", "thermal_zone*"))
	sort.Strings(zones)
	for _, z := range zones {
		c, ok := milli(filepath.Join(z, "temp"))
		if !ok {
			continue
		}
		t := api.Temperature{Name: readLine(filepath.Join(z, "type")), Celsius: c}
		trips, _ := filepath.Glob(filepath.Join(z, "trip_point_*_type"))
		for _, tp := range trips {
			if readLine(tp) == "critical" {
				if crit, ok := milli(strings.TrimSuffix(tp, "_type") + "_temp"); ok && crit > 0 {
					t.Critical = crit
				}
			}
		}
		out = append(out, t)
	}
	if len(out) > 0 {
		return out
	}
	mons, _ := filepath.Glob(filepath.Join(class, "hwmon", "hwmon*"))
	sort.Strings(mons)
	for _, m := range mons {
		name := readLine(filepath.Join(m, "name"))
		inputs, _ := filepath.Glob(filepath.Join(m, "temp*_input"))
		sort.Strings(inputs)
		for _, in := range inputs {
			c, ok := milli(in)
			if !ok {
				continue
			}
			base := strings.TrimSuffix(in, "_input")
			t := api.Temperature{Name: name, Celsius: c}
			if l := readLine(base + "_label"); l != "" {
				t.Name = name + " " + l
			}
			if crit, ok := milli(base + "_crit"); ok && crit > 0 {
				t.Critical = crit
			}
			out = append(out, t)
		}
	}
	return out
}

// milli reads a sysfs temperature in millidegrees Celsius.
func milli(path string) (float64, bool) {
	v, err := strconv.ParseInt(readLine(path), 10, 64)
	if err != nil {
		return 0, false
	}
	c := float64(v) / 1000
	return c, c >= -50 && c <= 200
}

// readLine is a small sysfs file's first line, "" when unreadable.
func readLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(l)
}
