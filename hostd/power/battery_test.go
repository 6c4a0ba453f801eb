package power

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeSupply writes a /sys/class/power_supply tree: supply name ->
// attribute -> value.
func fakeSupply(t *testing.T, tree map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, attrs := range tree {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range attrs {
			if err := os.WriteFile(filepath.Join(dir, name, k), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestReadPower reads laptops as their firmware reports them, and decides
// when the battery is too low to go on.
func TestReadPower(t *testing.T) {
	ac := func(online string) map[string]string { return map[string]string{"type": "Mains", "online": online} }
	for _, c := range []struct {
		name    string
		tree    map[string]map[string]string
		onAC    bool
		percent int
		line    string
		low     bool // at the default threshold, 5%
	}{
		{"on AC, charging", map[string]map[string]string{
			"AC":   ac("1"),
			"BAT0": {"type": "Battery", "present": "1", "status": "Charging", "energy_now": "40000000", "energy_full": "50000000"},
		}, true, 80, "AC, battery 80% (Charging)", false},
		{"on battery, 4%", map[string]map[string]string{
			"AC":   ac("0"),
			"BAT0": {"type": "Battery", "present": "1", "status": "Discharging", "charge_now": "200000", "charge_full": "5000000"},
		}, false, 4, "battery 4% (Discharging)", true},
		{"on AC at 3%: not low", map[string]map[string]string{
			"ADP1": ac("1"),
			"BAT0": {"type": "Battery", "status": "Charging", "capacity": "3"},
		}, true, 3, "AC, battery 3% (Charging)", false},
		{"two batteries by energy", map[string]map[string]string{
			"AC":   ac("0"),
			"BAT0": {"type": "Battery", "status": "Discharging", "energy_now": "1000000", "energy_full": "20000000"},
			"BAT1": {"type": "Battery", "status": "Discharging", "energy_now": "0", "energy_full": "80000000"},
		}, false, 1, "battery 1% (Discharging, Discharging)", true},
		{"capacity only, no AC listed", map[string]map[string]string{
			"BAT0": {"type": "Battery", "status": "Discharging", "capacity": "5"},
		}, false, 5, "battery 5% (Discharging)", true},
		{"a mouse's battery is not the laptop's", map[string]map[string]string{
			"AC":             ac("0"),
			"BAT0":           {"type": "Battery", "status": "Discharging", "capacity": "50"},
			"hidpp_battery0": {"type": "Battery", "scope": "Device", "status": "Discharging", "capacity": "1"},
		}, false, 50, "battery 50% (Discharging)", false},
		{"a removed battery", map[string]map[string]string{
			"AC":   ac("1"),
			"BAT1": {"type": "Battery", "present": "0", "capacity": "0"},
		}, true, -1, "AC", false},
	} {
		p := ReadPower(fakeSupply(t, c.tree))
		if p == nil {
			t.Errorf("%s: no power supply read", c.name)
			continue
		}
		if p.OnAC != c.onAC || p.Percent != c.percent {
			t.Errorf("%s: on AC %v at %d%%, want %v at %d%%", c.name, p.OnAC, p.Percent, c.onAC, c.percent)
		}
		if got := p.Line(); got != c.line {
			t.Errorf("%s: line %q, want %q", c.name, got, c.line)
		}
		if got := LowBattery(p, 5); got != c.low {
			t.Errorf("%s: low = %v, want %v", c.name, got, c.low)
		}
		if LowBattery(p, 0) {
			t.Errorf("%s: low with the threshold off", c.name)
		}
	}
	// A virtual machine or a desktop: nothing to read, never low.
	if p := ReadPower(fakeSupply(t, nil)); p != nil || LowBattery(p, 5) || p.Line() != "mains (no battery)" {
		t.Errorf("no supplies: %+v", p)
	}
	if p := ReadPower(filepath.Join(t.TempDir(), "missing")); p != nil {
		t.Errorf("a missing tree: %+v", p)
	}
}

// TestWatchBattery: two low reads in a row ask for the power-off, once;
// a battery that is charging, or no battery at all, never does.
func TestWatchBattery(t *testing.T) {
	low := fakeSupply(t, map[string]map[string]string{
		"AC":   {"type": "Mains", "online": "0"},
		"BAT0": {"type": "Battery", "status": "Discharging", "capacity": "3"},
	})
	got := make(chan string, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	WatchBattery(ctx, slog.Default(), low, 5, 5*time.Millisecond, got)
	select {
	case why := <-got:
		if why != "battery at 3% (low_battery = 5)" {
			t.Errorf("reason = %q", why)
		}
	default:
		t.Fatal("a low battery did not power the host off")
	}
	charging := fakeSupply(t, map[string]map[string]string{
		"AC":   {"type": "Mains", "online": "1"},
		"BAT0": {"type": "Battery", "status": "Charging", "capacity": "3"},
	})
	for _, dir := range []string{charging, fakeSupply(t, nil)} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		WatchBattery(ctx, slog.Default(), dir, 5, 5*time.Millisecond, got)
		cancel()
		if len(got) != 0 {
			t.Errorf("%s: powered off: %q", dir, <-got)
		}
	}
}
