package vm

import (
	"strings"
	"testing"

	"github.com/digitalocean/go-qemu/qmp"
)

func TestDescribeEvent(t *testing.T) {
	for _, c := range []struct {
		name   string
		e      qmp.Event
		effect EventEffect
		text   string
	}{
		{"full", qmp.Event{Event: "BLOCK_IO_ERROR", Data: map[string]any{"device": "disk0", "operation": "write", "action": "stop", "nospace": true, "reason": "No space left on device"}},
			EventProblem, "paused: its disk (disk0) found no space left on the data partition"},
		{"eio stop", qmp.Event{Event: "BLOCK_IO_ERROR", Data: map[string]any{"device": "", "node-name": "n1", "operation": "read", "action": "stop", "reason": "Input/output error"}},
			EventProblem, "paused: read error on its disk n1: Input/output error"},
		{"eio report", qmp.Event{Event: "BLOCK_IO_ERROR", Data: map[string]any{"device": "disk0", "operation": "read", "action": "report"}},
			EventNote, "read error on its disk disk0 (reported to the guest)"},
		{"bsod", qmp.Event{Event: "GUEST_PANICKED", Data: map[string]any{"action": "run", "info": map[string]any{"type": "hyper-v", "arg1": float64(0xd1)}}},
			EventNote, "crashed: Windows stop code 0xd1"},
		{"panic", qmp.Event{Event: "GUEST_PANICKED", Data: map[string]any{"action": "run"}}, EventNote, "crashed (a panic"},
		{"guest reset", qmp.Event{Event: "RESET", Data: map[string]any{"guest": true, "reason": "guest-reset"}}, EventNote, "restarted (guest-reset)"},
		{"host reset", qmp.Event{Event: "RESET", Data: map[string]any{"guest": false}}, 0, ""},
		{"resume", qmp.Event{Event: "RESUME"}, EventResolved, ""},
		{"stop", qmp.Event{Event: "STOP"}, 0, ""},
		{"garbage", qmp.Event{Event: "BLOCK_IO_ERROR", Data: map[string]any{"nospace": "yes", "device": 7}}, EventNote, "an I/O error on its disk "},
	} {
		got := DescribeEvent(c.e)
		if got.Effect != c.effect || !strings.HasPrefix(got.Text, c.text) {
			t.Errorf("%s: %+v, want effect %d and %q", c.name, got, c.effect, c.text)
		}
	}
}

func TestParseProgress(t *testing.T) {
	for in, want := range map[string]int{"    (0.00/100%)": 0, "    (45.67/100%)": 45, "(100.00/100%)": 100} {
		if got, ok := ParseProgress(in); !ok || got != want {
			t.Errorf("%q: %d %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "45%", "(x/100%)", "(101.00/100%)", "(-1/100%)"} {
		if _, ok := ParseProgress(bad); ok {
			t.Errorf("%q read as progress", bad)
		}
	}
}
