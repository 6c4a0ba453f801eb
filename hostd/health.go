package hostd

import (
	"fmt"
	"strings"

	"github.com/thinhost/thinhost/hostd/api"
	"github.com/thinhost/thinhost/hostd/supervise"
)

// hostd's console lines, as package api defines them for their readers.
const (
	SecureBootPrefix = api.SecureBootPrefix
	HealthPrefix     = api.HealthPrefix
	HealthOK         = api.HealthOK
	SlotsPrefix      = api.SlotsPrefix
	UpdatePrefix     = api.UpdatePrefix
)

// Problems is what is wrong with the host: what went wrong while it came
// up (recorded), and the supervised services — the guests' QEMU among
// them — that fail: waiting to restart after an exit, or ended with a
// failure.
func Problems(recorded []string, services []supervise.Status) []string {
	out := append([]string(nil), recorded...)
	for _, s := range services {
		switch {
		case s.State == supervise.Backoff:
			out = append(out, fmt.Sprintf("service %s is restarting after %s (%d restarts so far)", s.Name, orUnknown(s.LastExit), s.Restarts))
		case s.State == supervise.Stopped && s.LastExit != "" && s.LastExit != "exit status 0":
			out = append(out, fmt.Sprintf("service %s ended: %s", s.Name, s.LastExit))
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown exit"
	}
	return s
}

// HealthLine is the console's health line for problems.
func HealthLine(problems []string) string {
	if len(problems) == 0 {
		return HealthOK
	}
	return HealthPrefix + "DEGRADED: " + strings.Join(problems, "; ")
}

// SlotsLine says which slot booted and what each holds:
// "thinhost: slots: a (booted, good, build 1f2e...), b (trying, 2 boots left, build ...)".
func SlotsLine(slots []api.Slot) string {
	if len(slots) == 0 {
		return SlotsPrefix + "unknown (the ESP could not be read)"
	}
	var parts []string
	for _, s := range slots {
		var what []string
		if s.Booted {
			what = append(what, "booted")
		}
		what = append(what, s.State)
		if s.State == "trying" {
			what = append(what, fmt.Sprintf("%d boots left", s.TriesLeft))
		}
		if s.Build != "" {
			what = append(what, "build "+s.Build)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Name, strings.Join(what, ", ")))
	}
	return SlotsPrefix + strings.Join(parts, ", ")
}
