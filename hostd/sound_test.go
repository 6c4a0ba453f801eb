package hostd

import (
	"os"
	"path/filepath"
	"testing"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPickSound: a laptop's analog output before its HDMI ones and a
// USB headset on a later card; PCMOwner reads the stream's holder.
func TestPickSound(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"cards": " 0 [HDMI           ]: HDA-Intel - HDA Intel HDMI\n                      HDA Intel HDMI at 0xf7e1 irq 33\n" +
			" 1 [PCH            ]: HDA-Intel - HDA Intel PCH\n                      HDA Intel PCH at 0xf7f1 irq 31\n" +
			" 2 [Headset        ]: USB-Audio - USB Headset\n",
		"pcm": "00-03: HDMI 0 : HDMI 0 : playback 1\n00-07: HDMI 1 : HDMI 1 : playback 1\n" +
			"01-00: ALC269VB Analog : ALC269VB Analog : playback 1 : capture 1\n01-02: ALC269VB Alt Analog : ALC269VB Alt Analog : capture 1\n" +
			"02-00: USB Audio : USB Audio : playback 1 : capture 1\n",
		"card0/id": "HDMI\n", "card1/id": "PCH\n", "card2/id": "Headset\n",
		"card1/pcm0p/sub0/status": "state: RUNNING\nowner_pid   : 321\ntrigger_time: 1.0\n",
	})
	s, ok := PickSound(dir)
	if !ok || s.Card != 1 || s.ID != "PCH" || s.Device != 0 || !s.Capture || s.Name != "HDA Intel PCH" {
		t.Fatalf("PickSound = %+v, %v", s, ok)
	}
	if got := s.ALSA(); got != "plughw:CARD=PCH,DEV=0" {
		t.Errorf("ALSA() = %q", got)
	}
	if pid, state := PCMOwner(dir, s); pid != 321 || state != "RUNNING" {
		t.Errorf("PCMOwner = %d %q", pid, state)
	}
	// Only HDMI: that, then.
	only := t.TempDir()
	writeTree(t, only, map[string]string{"pcm": "00-03: HDMI 0 : HDMI 0 : playback 1\n", "card0/id": "HDMI\n", "card0/pcm3p/sub0/status": "closed\n"})
	if s, ok := PickSound(only); !ok || s.Device != 3 {
		t.Errorf("HDMI only: %+v %v", s, ok)
	} else if pid, _ := PCMOwner(only, s); pid != 0 {
		t.Errorf("a closed stream has owner %d", pid)
	}
	if _, ok := PickSound(t.TempDir()); ok {
		t.Error("a host without sound cards has one")
	}
}
