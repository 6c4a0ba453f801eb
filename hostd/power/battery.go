package power

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thinhost/thinhost/hostd/api"
)

// SupplyDir is where the kernel lists AC adapters and batteries.
const SupplyDir = "/sys/class/power_supply"

// ReadPower reads the AC adapters and batteries under dir (a
// /sys/class/power_supply tree); nil when there are none (a desktop, a
// virtual machine).
func ReadPower(dir string) *api.Power {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	p := &api.Power{}
	mains := false
	for _, e := range entries {
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name(), name))
			return strings.TrimSpace(string(b))
		}
		num := func(name string) (int64, bool) {
			n, err := strconv.ParseInt(read(name), 10, 64)
			return n, err == nil
		}
		switch read("type") {
		case "Mains":
			mains = true
			if read("online") == "1" {
				p.OnAC = true
			}
		case "Battery":
			if read("present") == "0" || read("scope") == "Device" { // a mouse's or a pen's
				continue
			}
			b := api.Battery{Name: e.Name(), Status: read("status"), Percent: -1}
			// energy (µWh) or charge (µAh), whichever the firmware gives;
			// capacity (%) where it gives only that.
			for _, unit := range []string{"energy", "charge"} {
				now, ok1 := num(unit + "_now")
				full, ok2 := num(unit + "_full")
				if ok1 && ok2 && full > 0 {
					b.Now, b.Full = now, full
					b.Percent = int(min(100, now*100/full))
					break
				}
			}
			if b.Percent < 0 {
				if c, ok := num("capacity"); ok && c >= 0 && c <= 100 {
					b.Percent = int(c)
				}
			}
			if b.Percent >= 0 {
				p.Batteries = append(p.Batteries, b)
			}
		}
	}
	if !mains && len(p.Batteries) == 0 {
		return nil
	}
	// Without an AC adapter listed, a battery that is not discharging
	// means mains power.
	if !mains {
		p.OnAC = true
		for _, b := range p.Batteries {
			if b.Status == "Discharging" {
				p.OnAC = false
			}
		}
	}
	p.Percent = -1
	if len(p.Batteries) > 0 {
		p.Percent = totalPercent(p.Batteries)
	}
	return p
}

// totalPercent is the charge of all batteries together: by energy where
// every battery reports it, else the mean of their percentages.
func totalPercent(bs []api.Battery) int {
	var now, full int64
	for _, b := range bs {
		if b.Full <= 0 {
			sum := 0
			for _, b := range bs {
				sum += b.Percent
			}
			return sum / len(bs)
		}
		now, full = now+b.Now, full+b.Full
	}
	return int(min(100, now*100/full))
}

// LowBattery says whether the host must shut down to save its guests'
// disks before the battery dies: on battery, discharging, at or below
// threshold percent (0: never).
func LowBattery(p *api.Power, threshold int) bool {
	if p == nil || threshold <= 0 || p.OnAC || p.Percent < 0 {
		return false
	}
	return p.Percent <= threshold
}

// WatchBattery reads the power supply under dir every interval and,
// when the battery has been low (LowBattery at threshold) on two reads in
// a row, sends why on low: the host shuts its guests down cleanly and
// powers off before the battery dies under them. It returns when ctx
// ends, or at once without a threshold or a battery.
func WatchBattery(ctx context.Context, log *slog.Logger, dir string, threshold int, interval time.Duration, low chan<- string) {
	if threshold <= 0 || ReadPower(dir) == nil {
		return
	}
	seen := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := ReadPower(dir)
		if !LowBattery(p, threshold) {
			seen = 0
			continue
		}
		if seen++; seen < 2 {
			log.Warn("battery low", "percent", p.Percent, "threshold", threshold)
			continue
		}
		select {
		case low <- fmt.Sprintf("battery at %d%% (low_battery = %d)", p.Percent, threshold):
		default:
		}
		return
	}
}
